"""SQL of the read models payments keeps from other services' events: accounts (and the
agency managing each), providers (standing, registering agency), courses and their
sessions, and top-up lots."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.enrolments import HOLDS_SEAT
from services.payments.domain.views import (
    AccountView,
    CourseView,
    LotView,
    SessionView,
    provider_standing,
)
from services.payments.store.rows import one, param, row_of
from shared.db import driver, fetch_rows, update_row


async def _first(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> Any:
    """The first row ``sql`` selects (its columns by name), or None."""
    found = await fetch_rows(session, sql, params)
    return found[0] if found else None


async def upsert_account(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    agency_id: str,
    status: str,
    employment_status: str,
    need_tier: str,
) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.accounts (account_id, agency_id, status, employment_status, "
            "need_tier) VALUES (:a, :agency, :status, :emp, :tier) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "employment_status = EXCLUDED.employment_status, need_tier = EXCLUDED.need_tier, "
            "updated_at = now()"
        ),
        {
            "a": account_id,
            "agency": agency_id,
            "status": status,
            "emp": employment_status,
            "tier": need_tier,
        },
    )


async def open_accounts(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, str, str, str]]
) -> None:
    """Many :func:`upsert_account` of active accounts in one statement: rows of (account_id,
    agency_id, employment_status, need_tier), each account once."""
    if rows:
        await (await driver(session)).execute(
            "INSERT INTO payments.accounts (account_id, agency_id, status, employment_status, "
            "need_tier) SELECT a, g, 'active', e, n "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS v(a, g, e, n) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "employment_status = EXCLUDED.employment_status, need_tier = EXCLUDED.need_tier, "
            "updated_at = now()",
            *zip(*rows, strict=True),
        )


ACCOUNT_COLUMNS = ("agency_id", "status", "employment_status", "need_tier")
"""The columns of ``payments.accounts`` :func:`change_accounts` sets."""


async def change_accounts(
    session: AsyncSession, changes: Sequence[tuple[uuid.UUID, Mapping[str, str]]]
) -> None:
    """Many :func:`update_account` in one statement: (account_id, the columns of
    :data:`ACCOUNT_COLUMNS` it sets), each account once; the other columns keep their value."""
    if changes:
        await (await driver(session)).execute(
            "UPDATE payments.accounts AS t SET agency_id = coalesce(v.g, t.agency_id), "
            "status = coalesce(v.s, t.status), "
            "employment_status = coalesce(v.e, t.employment_status), "
            "need_tier = coalesce(v.n, t.need_tier), updated_at = now() "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) "
            "AS v(a, g, s, e, n) WHERE t.account_id = v.a",
            [account for account, _ in changes],
            *([fields.get(c) for _, fields in changes] for c in ACCOUNT_COLUMNS),
        )


async def agency_of(session: AsyncSession, account_id: uuid.UUID | None) -> str | None:
    """The agency that manages the account (``None`` for an unknown account)."""
    if account_id is None:
        return None
    value = await session.scalar(
        text("SELECT agency_id FROM payments.accounts WHERE account_id = :a"), {"a": account_id}
    )
    return str(value) if value is not None else None


async def update_account(session: AsyncSession, account_id: uuid.UUID, **fields: Any) -> None:
    await update_row(session, "payments.accounts", "account_id", account_id, **fields)


async def account(session: AsyncSession, account_id: uuid.UUID) -> AccountView | None:
    row = await _first(
        session, "SELECT * FROM payments.accounts WHERE account_id = :a", {"a": account_id}
    )
    if row is None:
        return None
    return AccountView(
        account_id=row["account_id"],
        status=row["status"],
        employment_status=row["employment_status"],
        need_tier=row["need_tier"],
    )


async def upsert_provider(
    session: AsyncSession,
    provider_id: str,
    *,
    status: str,
    name: str | None = None,
    qa_valid_until: date | None = None,
    agency_id: str | None = None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.providers (provider_id, name, status, qa_valid_until, "
            "agency_id) VALUES (:p, coalesce(:name, ''), :status, :qa, :agency) "
            "ON CONFLICT (provider_id) DO UPDATE SET status = EXCLUDED.status, "
            "name = coalesce(:name, payments.providers.name), "
            "qa_valid_until = coalesce(:qa, payments.providers.qa_valid_until), "
            "agency_id = coalesce(:agency, payments.providers.agency_id), "
            "updated_at = now()"
        ),
        {
            "p": provider_id,
            "name": name,
            "status": status,
            "qa": qa_valid_until,
            "agency": agency_id,
        },
    )


async def provider_status(session: AsyncSession, provider_id: str, today: date) -> str | None:
    """The provider's standing today (``accredited`` only while its QA is valid)."""
    row = await _first(
        session,
        "SELECT status, qa_valid_until FROM payments.providers WHERE provider_id = :p",
        {"p": provider_id},
    )
    if row is None:
        return None
    return provider_standing(row["status"], row["qa_valid_until"], today)


async def provider_agency(session: AsyncSession, provider_id: str) -> tuple[bool, str | None]:
    """Whether payments knows the provider, and the agency that registered it."""
    row = await _first(
        session,
        "SELECT agency_id FROM payments.providers WHERE provider_id = :p",
        {"p": provider_id},
    )
    return (row is not None, row["agency_id"] if row else None)


async def upsert_course(session: AsyncSession, course: CourseView, *, title: str = "") -> None:
    await session.execute(
        text(
            "INSERT INTO payments.courses (course_id, provider_id, version, status, title, price, "
            "isced_field, eqf_level, tags, region, kind) VALUES (:c, :p, :v, :s, :t, :price, "
            ":isced, :eqf, :tags, :region, :kind) ON CONFLICT (course_id) DO UPDATE SET "
            "provider_id = EXCLUDED.provider_id, version = EXCLUDED.version, "
            "status = EXCLUDED.status, title = EXCLUDED.title, "
            "price = EXCLUDED.price, isced_field = EXCLUDED.isced_field, "
            "eqf_level = EXCLUDED.eqf_level, tags = EXCLUDED.tags, region = EXCLUDED.region, "
            "kind = coalesce(EXCLUDED.kind, payments.courses.kind), updated_at = now() "
            "WHERE payments.courses.version <= EXCLUDED.version"
        ),
        {
            "c": course.course_id,
            "p": course.provider_id,
            "v": course.version,
            "s": course.status,
            "t": title,
            "price": course.price,
            "isced": course.isced_field,
            "eqf": course.eqf_level,
            "tags": list(course.tags),
            "region": course.region,
            "kind": course.kind,
        },
    )


async def set_course_status(
    session: AsyncSession, course_id: uuid.UUID, status: str, version: int
) -> None:
    """The course's status from an event about ``version`` (older versions change nothing)."""
    await session.execute(
        text(
            "UPDATE payments.courses SET status = :s, version = :v, updated_at = now() "
            "WHERE course_id = :c AND version <= :v"
        ),
        {"c": course_id, "s": status, "v": version},
    )


async def replace_sessions(
    session: AsyncSession, course_id: uuid.UUID, sessions: Sequence[SessionView]
) -> None:
    """The course's sessions are these; any other it had is withdrawn."""
    for s in sessions:
        await session.execute(
            text(
                "INSERT INTO payments.sessions (session_id, course_id, starts_on, ends_on, seats, "
                "ends_at) VALUES (:s, :c, :start, :end, :seats, :ends_at) "
                "ON CONFLICT (session_id) DO UPDATE SET "
                "starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, "
                "ends_at = EXCLUDED.ends_at, "
                "seats = EXCLUDED.seats, withdrawn = false"
            ),
            {
                "s": s.session_id,
                "c": course_id,
                "start": s.starts_on,
                "end": s.ends_on,
                "seats": s.seats,
                "ends_at": s.ends_at,
            },
        )
    await session.execute(
        text(
            "UPDATE payments.sessions SET withdrawn = true "
            "WHERE course_id = :c AND NOT (session_id = ANY(:keep))"
        ),
        {"c": course_id, "keep": [s.session_id for s in sessions]},
    )


async def course(session: AsyncSession, course_id: uuid.UUID) -> CourseView | None:
    sql = "SELECT * FROM payments.courses WHERE course_id = :c"
    view = await one(session, CourseView, sql, {"c": course_id})
    return replace(view, tags=tuple(view.tags)) if view is not None else None  # a list read


async def seats_taken(session: AsyncSession, session_id: uuid.UUID) -> int:
    n = await session.scalar(
        text(
            "SELECT count(*) FROM payments.enrolments "
            "WHERE session_id = :s AND status = ANY(:statuses)"
        ),
        {"s": session_id, "statuses": list(HOLDS_SEAT)},
    )
    return int(n or 0)


async def add_lot(session: AsyncSession, row: Mapping[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.lots (lot_id, account_id, kind, funder_id, amount, earmark, "
            "expires_at) VALUES (:lot_id, :account_id, :kind, :funder_id, :amount, "
            "CAST(:earmark AS jsonb), :expires_at) ON CONFLICT (lot_id) DO NOTHING"
        ),
        {**row, "earmark": param("earmark", row.get("earmark"))},
    )


async def add_lots(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Many :func:`add_lot` in one statement (a lot already known is left as it is)."""
    if rows:
        columns = ("lot_id", "account_id", "kind", "funder_id", "amount", "earmark", "expires_at")
        await (await driver(session)).execute(
            "INSERT INTO payments.lots (lot_id, account_id, kind, funder_id, amount, earmark, "
            "expires_at) SELECT l, a, k, f, m, CAST(e AS jsonb), x FROM unnest($1::uuid[], "
            "$2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[]) "
            "AS v(l, a, k, f, m, e, x) ON CONFLICT (lot_id) DO NOTHING",
            *([param(c, row.get(c)) for row in rows] for c in columns),
        )


async def revoke_lot(session: AsyncSession, lot_id: uuid.UUID) -> None:
    await session.execute(
        text("UPDATE payments.lots SET revoked = true WHERE lot_id = :l"), {"l": lot_id}
    )


@dataclass(frozen=True)
class EnrolmentInputs:
    """What proposing or confirming an enrolment reads of the read models."""

    account: AccountView | None
    course: CourseView | None
    provider_status: str | None
    lots: list[LotView]  # the account's (none without an account)
    session: SessionView | None  # with a session id only
    seats_taken: int  # of that session (0 without one)
    proposed_since: int  # by the provider since the instant given (0 without one)


PROVIDER_STANDING = (
    "(SELECT ROW(status, qa_valid_until) FROM payments.providers WHERE provider_id = :provider)"
)
"""The provider's standing as one value of a larger statement (see :func:`standing`)."""


def standing(value: Any, today: date) -> str | None:
    """:func:`provider_status` from the value :data:`PROVIDER_STANDING` selected."""
    return provider_standing(value[0], value[1], today) if value is not None else None


_INPUTS = (
    f"SELECT (SELECT {row_of(AccountView)} FROM payments.accounts "
    "WHERE account_id = i.in_account), "
    f"(SELECT {row_of(CourseView)} FROM payments.courses WHERE course_id = i.in_course), "
    f"{PROVIDER_STANDING.replace(':provider', 'i.in_provider')}, "
    f"ARRAY(SELECT {row_of(LotView)} FROM payments.lots WHERE account_id = i.in_account), "
    f"(SELECT {row_of(SessionView)} FROM payments.sessions "
    "WHERE session_id = i.in_session), "
    "(SELECT count(*) FROM payments.enrolments "
    "WHERE session_id = i.in_session AND status = ANY(:holding::text[])), "
    "(SELECT count(*) FROM payments.enrolments "
    "WHERE provider_id = i.in_provider AND proposed_at > i.in_since) "
    "FROM unnest(CAST(:account AS uuid[]), CAST(:course AS uuid[]), "
    "CAST(:provider AS text[]), CAST(:session AS uuid[]), CAST(:since AS timestamptz[])) "
    "WITH ORDINALITY AS i(in_account, in_course, in_provider, in_session, in_since, in_n) "
    "ORDER BY i.in_n"
)


@dataclass(frozen=True)
class InputsAsked:
    """What one decision on an enrolment reads (see :func:`enrolment_inputs`)."""

    account_id: uuid.UUID
    course_id: uuid.UUID
    provider_id: str
    session_id: uuid.UUID | None = None
    since: datetime | None = None


async def enrolment_inputs(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    course_id: uuid.UUID,
    provider_id: str,
    today: date,
    session_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> EnrolmentInputs:
    """:func:`account`, :func:`course`, :func:`provider_status`, :func:`lots_of`,
    :func:`training_session`, :func:`seats_taken` and ``enrolments_since`` in one
    statement (one round trip where they took seven; each as those functions give it)."""
    asked = InputsAsked(account_id, course_id, provider_id, session_id, since)
    return (await enrolment_inputs_many(session, [asked], today))[0]


async def enrolment_inputs_many(
    session: AsyncSession, asks: Sequence[InputsAsked], today: date
) -> list[EnrolmentInputs]:
    """:func:`enrolment_inputs` of each of ``asks``, in one statement (a batch of the
    learners' confirmations), in their order."""
    if not asks:
        return []
    found = await fetch_rows(
        session,
        _INPUTS,
        {
            "account": [a.account_id for a in asks],
            "course": [a.course_id for a in asks],
            "provider": [a.provider_id for a in asks],
            "session": [a.session_id for a in asks],
            "since": [a.since for a in asks],
            "holding": list(HOLDS_SEAT),
        },
    )
    return [_inputs(row, today) for row in found]


def _inputs(row: Any, today: date) -> EnrolmentInputs:
    account, course, provider, lots, training, seats, proposed = row
    found_course = CourseView(*course) if course is not None else None
    return EnrolmentInputs(
        account=AccountView(*account) if account is not None else None,
        course=replace(found_course, tags=tuple(found_course.tags)) if found_course else None,
        provider_status=standing(provider, today),
        lots=[LotView(*lot) for lot in lots] if account is not None else [],
        session=SessionView(*training) if training is not None else None,
        seats_taken=int(seats),
        proposed_since=int(proposed),
    )
