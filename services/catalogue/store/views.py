"""Read models the catalogue keeps from other services' events: the agency managing each
account (scope of credentials) and the enrolments holding a seat in each session (a session
with enrolments is not removed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver, fetch_one


async def set_account_agency(session: AsyncSession, account_id: uuid.UUID, agency_id: str) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.accounts (account_id, agency_id) VALUES (:a, :g) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "updated_at = now()"
        ),
        {"a": account_id, "g": agency_id},
    )


async def set_account_agencies(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, str]]
) -> None:
    """Many :func:`set_account_agency` in one statement: (account_id, agency_id), each
    account once."""
    if rows:
        await (await driver(session)).execute(
            "INSERT INTO catalogue.accounts (account_id, agency_id) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "updated_at = now()",
            *zip(*rows, strict=True),
        )


async def account_agency(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    agency: str | None = await session.scalar(
        text("SELECT agency_id FROM catalogue.accounts WHERE account_id = :a"), {"a": account_id}
    )
    return agency


Seat = tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID, str]
"""An enrolment's seat: (enrolment_id, course_id, session_id, account_id, provider_id)."""


def _on_conflict(live: bool) -> str:
    # an end is final (a late confirmation does not hold the seat again); the learner and
    # the provider are filled in for rows projected before they were kept
    keep = (
        "account_id = coalesce(t.account_id, EXCLUDED.account_id), "
        "provider_id = coalesce(t.provider_id, EXCLUDED.provider_id)"
    )
    return f"DO UPDATE SET {keep}" + ("" if live else ", live = FALSE, updated_at = now()")


async def set_seat(
    session: AsyncSession,
    enrolment_id: uuid.UUID,
    course_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    live: bool,
    account_id: uuid.UUID | None = None,
    provider_id: str | None = None,
) -> None:
    """``live``: the enrolment holds a seat (unless it ended already: an end is final).
    Not ``live``: cancelled or rejected, the seat is free (recorded even if the confirmation
    is late)."""
    await session.execute(
        text(
            "INSERT INTO catalogue.session_enrolments AS t (enrolment_id, course_id, session_id, "
            "live, account_id, provider_id) VALUES (:e, :c, :s, :live, :a, :p) "
            f"ON CONFLICT (enrolment_id) {_on_conflict(live)}"
        ),
        {
            "e": enrolment_id,
            "c": course_id,
            "s": session_id,
            "live": live,
            "a": account_id,
            "p": provider_id,
        },
    )


async def set_seats(session: AsyncSession, rows: Sequence[Seat], *, live: bool) -> None:
    """Many :func:`set_seat` in one statement, each enrolment once."""
    if rows:
        await (await driver(session)).execute(
            "INSERT INTO catalogue.session_enrolments AS t (enrolment_id, course_id, session_id, "
            f"live, account_id, provider_id) SELECT e, c, s, {'TRUE' if live else 'FALSE'}, a, p "
            "FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[]) "
            "AS v(e, c, s, a, p) "
            f"ON CONFLICT (enrolment_id) {_on_conflict(live)}",
            *zip(*rows, strict=True),
        )


@dataclass(frozen=True)
class EnrolmentView:
    """An enrolment as the catalogue knows it from payments' events."""

    enrolment_id: uuid.UUID
    course_id: uuid.UUID
    live: bool
    account_id: uuid.UUID | None
    provider_id: str | None


async def enrolment(session: AsyncSession, enrolment_id: uuid.UUID) -> EnrolmentView | None:
    sql = (
        "SELECT enrolment_id, course_id, live, account_id, provider_id "
        "FROM catalogue.session_enrolments WHERE enrolment_id = :e"
    )
    return await fetch_one(session, EnrolmentView, sql, {"e": enrolment_id})


async def sessions_with_enrolments(
    session: AsyncSession, course_id: uuid.UUID, session_ids: Iterable[uuid.UUID]
) -> frozenset[str]:
    """Those of ``session_ids`` of the course that have a live enrolment."""
    ids = [str(s) for s in session_ids]
    if not ids:
        return frozenset()
    rows = await session.execute(
        text(
            "SELECT DISTINCT session_id FROM catalogue.session_enrolments "
            "WHERE live AND course_id = :c AND session_id = ANY(CAST(:s AS uuid[]))"
        ),
        {"c": course_id, "s": ids},
    )
    return frozenset(str(r.session_id) for r in rows)
