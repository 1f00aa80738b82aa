"""The only place with SQL for payments: read models, enrolments, reservations, claims,
payees, payout runs and payouts. Rows come back as plain dicts; nothing here commits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import (
    HOLDS_SEAT,
    AccountView,
    CourseView,
    LotView,
    SessionView,
    provider_standing,
)

Row = dict[str, Any]

_TABLES = {
    "enrolments": "enrolment_id",
    "reservations": "reservation_id",
    "claims": "claim_id",
    "payouts": "payout_id",
}
_JSON_COLUMNS = {"evidence", "earmark", "skipped"}


def _param(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS and value is not None else value


async def _one(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> Row | None:
    row = (await session.execute(text(sql), params)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def _all(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> list[Row]:
    return [dict(r._mapping) for r in await session.execute(text(sql), params)]


async def insert(session: AsyncSession, table: str, row: Mapping[str, Any]) -> None:
    assert table in _TABLES or table in ("payout_lines", "payout_runs")
    columns = ", ".join(row)
    values = ", ".join(f"CAST(:{c} AS jsonb)" if c in _JSON_COLUMNS else f":{c}" for c in row)
    await session.execute(
        text(f"INSERT INTO payments.{table} ({columns}) VALUES ({values})"),
        {c: _param(c, v) for c, v in row.items()},
    )


async def update(session: AsyncSession, table: str, key: Any, **fields: Any) -> None:
    column = _TABLES[table]
    sets = ", ".join(
        f"{c} = CAST(:{c} AS jsonb)" if c in _JSON_COLUMNS else f"{c} = :{c}" for c in fields
    )
    await session.execute(
        text(f"UPDATE payments.{table} SET {sets} WHERE {column} = :_key"),
        {"_key": key, **{c: _param(c, v) for c, v in fields.items()}},
    )


async def get(session: AsyncSession, table: str, key: Any, *, lock: bool = False) -> Row | None:
    column = _TABLES[table]
    sql = f"SELECT * FROM payments.{table} WHERE {column} = :key"
    return await _one(session, sql + (" FOR UPDATE" if lock else ""), {"key": key})


# --- read models -------------------------------------------------------------------------


async def upsert_account(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    agency_id: str,
    status: str,
    employment_status: str,
    need_flags: Sequence[str],
) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.accounts (account_id, agency_id, status, employment_status, "
            "need_flags) VALUES (:a, :agency, :status, :emp, :flags) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "employment_status = EXCLUDED.employment_status, need_flags = EXCLUDED.need_flags, "
            "updated_at = now()"
        ),
        {
            "a": account_id,
            "agency": agency_id,
            "status": status,
            "emp": employment_status,
            "flags": list(need_flags),
        },
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
    sets = ", ".join(f"{c} = :{c}" for c in fields)
    await session.execute(
        text(f"UPDATE payments.accounts SET {sets}, updated_at = now() WHERE account_id = :_a"),
        {"_a": account_id, **fields},
    )


async def account(session: AsyncSession, account_id: uuid.UUID) -> AccountView | None:
    row = await _one(
        session, "SELECT * FROM payments.accounts WHERE account_id = :a", {"a": account_id}
    )
    if row is None:
        return None
    return AccountView(
        account_id=row["account_id"],
        status=row["status"],
        employment_status=row["employment_status"],
        need_flags=tuple(row["need_flags"]),
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
    row = await _one(
        session,
        "SELECT status, qa_valid_until FROM payments.providers WHERE provider_id = :p",
        {"p": provider_id},
    )
    if row is None:
        return None
    return provider_standing(row["status"], row["qa_valid_until"], today)


async def provider_name(session: AsyncSession, provider_id: str) -> str | None:
    value = await session.scalar(
        text("SELECT name FROM payments.providers WHERE provider_id = :p"), {"p": provider_id}
    )
    return str(value) if value else None


async def upsert_course(session: AsyncSession, course: CourseView, *, title: str = "") -> None:
    await session.execute(
        text(
            "INSERT INTO payments.courses (course_id, provider_id, version, status, title, price, "
            "isced_field, eqf_level, tags) VALUES (:c, :p, :v, :s, :t, :price, :isced, :eqf, "
            ":tags) ON CONFLICT (course_id) DO UPDATE SET provider_id = EXCLUDED.provider_id, "
            "version = EXCLUDED.version, status = EXCLUDED.status, title = EXCLUDED.title, "
            "price = EXCLUDED.price, isced_field = EXCLUDED.isced_field, "
            "eqf_level = EXCLUDED.eqf_level, tags = EXCLUDED.tags, updated_at = now() "
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
    row = await _one(
        session, "SELECT * FROM payments.courses WHERE course_id = :c", {"c": course_id}
    )
    if row is None:
        return None
    return CourseView(
        course_id=row["course_id"],
        provider_id=row["provider_id"],
        version=row["version"],
        status=row["status"],
        price=row["price"],
        isced_field=row["isced_field"],
        eqf_level=row["eqf_level"],
        tags=tuple(row["tags"]),
    )


async def training_session(
    session: AsyncSession, session_id: uuid.UUID, *, lock: bool = False
) -> SessionView | None:
    sql = "SELECT * FROM payments.sessions WHERE session_id = :s"
    row = await _one(session, sql + (" FOR UPDATE" if lock else ""), {"s": session_id})
    return SessionView(**row) if row else None


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
        {**row, "earmark": _param("earmark", row.get("earmark"))},
    )


async def revoke_lot(session: AsyncSession, lot_id: uuid.UUID) -> None:
    await session.execute(
        text("UPDATE payments.lots SET revoked = true WHERE lot_id = :l"), {"l": lot_id}
    )


async def lots_of(session: AsyncSession, account_id: uuid.UUID) -> list[LotView]:
    rows = await _all(
        session,
        "SELECT kind, amount, earmark, expires_at, revoked FROM payments.lots "
        "WHERE account_id = :a",
        {"a": account_id},
    )
    return [LotView(**r) for r in rows]


# --- enrolments and reservations -----------------------------------------------------------


async def enrolments_since(session: AsyncSession, provider_id: str, since: datetime) -> int:
    n = await session.scalar(
        text(
            "SELECT count(*) FROM payments.enrolments "
            "WHERE provider_id = :p AND proposed_at > :since"
        ),
        {"p": provider_id, "since": since},
    )
    return int(n or 0)


async def lock_key(session: AsyncSession, key: str) -> None:
    """Serialise decisions that must see each other (seats, velocity, payout runs)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


async def due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "SELECT enrolment_id FROM payments.enrolments "
            "WHERE status IN ('awaiting_learner_confirmation', 'awaiting_co_payment') "
            "AND expires_at <= :now ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"now": now, "n": limit},
    )
    return [r.enrolment_id for r in rows]


async def reservations_of(session: AsyncSession, enrolment_id: uuid.UUID) -> list[Row]:
    return await _all(
        session,
        "SELECT * FROM payments.reservations WHERE enrolment_id = :e ORDER BY requested_at",
        {"e": enrolment_id},
    )


async def page(
    session: AsyncSession,
    table: str,
    filters: Mapping[str, Any],
    *,
    order: str,
    limit: int,
    after: uuid.UUID | None,
) -> list[Row]:
    """A page in (``order`` desc, id desc) order; ``after`` is the last id of the previous page."""
    column = _TABLES[table]
    filters = dict(filters)
    managed_by = filters.pop("managed_by", None)  # an agency: rows of the accounts it manages
    where = [f"{c} = :{c}" for c, v in filters.items() if v is not None]
    params: dict[str, Any] = {c: v for c, v in filters.items() if v is not None}
    if managed_by is not None:
        where.append(
            "account_id IN (SELECT account_id FROM payments.accounts WHERE agency_id = :_agency)"
        )
        params["_agency"] = managed_by
    if after is not None:
        where.append(
            f"({order}, {column}) < (SELECT {order}, {column} FROM payments.{table} "
            f"WHERE {column} = :_after)"
        )
        params["_after"] = after
    sql = f"SELECT * FROM payments.{table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order} DESC, {column} DESC LIMIT :_limit"
    params["_limit"] = limit
    return await _all(session, sql, params)


# --- claims --------------------------------------------------------------------------------


async def claims_of(session: AsyncSession, enrolment_id: uuid.UUID) -> list[Row]:
    return await _all(
        session,
        "SELECT * FROM payments.claims WHERE enrolment_id = :e ORDER BY claimed_at",
        {"e": enrolment_id},
    )


async def lapse_attestations(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Claims whose attestation window passed uncontested become payable (``lapsed``)."""
    rows = await session.execute(
        text(
            "UPDATE payments.claims SET attestation = 'lapsed', updated_at = :now "
            "WHERE claim_id IN (SELECT claim_id FROM payments.claims "
            "WHERE attestation = 'pending' AND attest_until <= :now "
            "ORDER BY attest_until LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING claim_id"
        ),
        {"now": now, "n": limit},
    )
    return len(rows.all())


async def claim_awaiting_capture(session: AsyncSession, reservation_id: uuid.UUID) -> Row | None:
    return await _one(
        session,
        "SELECT * FROM payments.claims WHERE reservation_id = :r AND capture_requested "
        "AND captured = 0 FOR UPDATE",
        {"r": reservation_id},
    )


async def unpaid_claims_of_provider(session: AsyncSession, provider_id: str) -> list[Row]:
    return await _all(
        session,
        "SELECT * FROM payments.claims WHERE provider_id = :p "
        "AND status IN ('approved', 'captured') FOR UPDATE",
        {"p": provider_id},
    )


# --- payees and payouts --------------------------------------------------------------------


async def upsert_payee(
    session: AsyncSession,
    provider_id: str,
    *,
    name: str,
    iban: str,
    bic: str | None,
    actor: str,
    now: datetime,
    replace: bool = True,
) -> None:
    conflict = (
        "DO UPDATE SET name = EXCLUDED.name, iban = EXCLUDED.iban, bic = EXCLUDED.bic, "
        "updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at"
        if replace
        else "DO NOTHING"
    )
    await session.execute(
        text(
            "INSERT INTO payments.payees (provider_id, name, iban, bic, updated_by, updated_at, "
            f"effective_at) VALUES (:p, :n, :i, :b, :a, :t, :t) "
            f"ON CONFLICT (provider_id) {conflict}"
        ),
        {"p": provider_id, "n": name, "i": iban, "b": bic, "a": actor, "t": now},
    )


async def payee(session: AsyncSession, provider_id: str) -> Row | None:
    return await _one(
        session, "SELECT * FROM payments.payees WHERE provider_id = :p", {"p": provider_id}
    )


async def set_claims(session: AsyncSession, claim_ids: Sequence[uuid.UUID], **fields: Any) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in fields)
    await session.execute(
        text(f"UPDATE payments.claims SET {sets} WHERE claim_id = ANY(:_ids)"),
        {"_ids": list(claim_ids), **fields},
    )


async def payout_lines(session: AsyncSession, payout_id: uuid.UUID) -> list[Row]:
    return await _all(
        session,
        "SELECT * FROM payments.payout_lines WHERE payout_id = :p ORDER BY claim_id",
        {"p": payout_id},
    )


async def run(session: AsyncSession, run_id: uuid.UUID) -> Row | None:
    return await _one(
        session, "SELECT * FROM payments.payout_runs WHERE run_id = :r", {"r": run_id}
    )


async def payouts_of_run(session: AsyncSession, run_id: uuid.UUID) -> list[Row]:
    return await _all(
        session,
        "SELECT * FROM payments.payouts WHERE run_id = :r ORDER BY provider_id",
        {"r": run_id},
    )


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
