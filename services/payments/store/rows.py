"""Typed rows in and out of payments' tables: each frozen dataclass of the domain maps to
one table (:data:`TABLES`); :func:`save` writes the columns a decision changed. Also pages
in a stable order and the advisory locks that serialise decisions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.guidance import GuidancePlan
from services.payments.domain.leave import LeaveRequest
from services.payments.domain.payees import Payee
from services.payments.domain.payouts import Payout, PayoutLine, PayoutRun
from services.payments.domain.recoveries import Recovery
from services.payments.domain.reservations import Reservation
from shared.db import execute, fetch_all, fetch_one

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

# each typed row's table and key
TABLES: dict[type[Any], tuple[str, str]] = {
    Enrolment: ("enrolments", "enrolment_id"),
    Reservation: ("reservations", "reservation_id"),
    Claim: ("claims", "claim_id"),
    Payout: ("payouts", "payout_id"),
    PayoutRun: ("payout_runs", "run_id"),
    PayoutLine: ("payout_lines", "claim_id"),
    Payee: ("payees", "provider_id"),
    Recovery: ("recoveries", "recovery_id"),
    GuidancePlan: ("guidance_plans", "plan_id"),
    LeaveRequest: ("leave_requests", "request_id"),
}
JSON_COLUMNS = frozenset({"evidence", "earmark", "skipped", "skills"})


def param(column: str, value: Any) -> Any:
    return json.dumps(value) if column in JSON_COLUMNS and value is not None else value


def placeholder(column: str) -> str:
    return f"CAST(:{column} AS jsonb)" if column in JSON_COLUMNS else f":{column}"


def row_of(kind: type) -> str:
    """``ROW(...)`` of ``kind``'s fields in order: one typed value per row that a statement
    can return beside others (asyncpg decodes it to a tuple: ``kind(*value)``)."""
    return f"ROW({', '.join(f.name for f in fields(kind))})"


def builder(kind: type[R]) -> Callable[..., R]:
    """``kind`` from a result row's columns (those the type does not name are left out)."""
    names = {f.name for f in fields(kind)}

    def build(**columns: Any) -> R:
        return kind(**{k: v for k, v in columns.items() if k in names})

    return build


async def one(
    session: AsyncSession, kind: type[R], sql: str, params: Mapping[str, Any]
) -> R | None:
    return await fetch_one(session, builder(kind), sql, params)


async def many(
    session: AsyncSession, kind: type[R], sql: str, params: Mapping[str, Any]
) -> list[R]:
    return await fetch_all(session, builder(kind), sql, params)


async def get(session: AsyncSession, kind: type[R], key: Any, *, lock: bool = False) -> R | None:
    """The row of ``kind`` with this key (``lock``: held until the transaction ends)."""
    table, column = TABLES[kind]
    sql = f"SELECT * FROM payments.{table} WHERE {column} = :key"
    return await one(session, kind, sql + (" FOR UPDATE" if lock else ""), {"key": key})


async def get_many(
    session: AsyncSession, kind: type[R], keys: Collection[Any], *, lock: bool = False
) -> dict[Any, R]:
    """The rows of ``kind`` with these keys, by key (``lock``: taken in key order, held
    until the transaction ends); a key without a row is left out."""
    table, column = TABLES[kind]
    sql = f"SELECT * FROM payments.{table} WHERE {column} = ANY(:keys) ORDER BY {column}"
    found = await many(session, kind, sql + (" FOR UPDATE" if lock else ""), {"keys": list(keys)})
    return {getattr(row, column): row for row in found}


def changes(before: R, after: R) -> dict[str, Any]:
    """The columns a decision changed from ``before`` to ``after``, with their new values."""
    return {
        f.name: getattr(after, f.name)
        for f in fields(after)
        if getattr(after, f.name) != getattr(before, f.name)
    }


async def save_many(session: AsyncSession, moves: Sequence[tuple[R, R]]) -> None:
    """:func:`save` for many rows of one kind: one pipelined statement per set of columns
    changed together (usually one)."""
    if not moves:
        return
    table, column = TABLES[type(moves[0][1])]
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for before, after in moves:
        changed = changes(before, after)
        if changed:
            params = {"_key": getattr(before, column)}
            params |= {c: param(c, v) for c, v in changed.items()}
            by_columns.setdefault(tuple(changed), []).append(params)
    for columns, many_params in by_columns.items():
        sets = ", ".join(f"{c} = {placeholder(c)}" for c in columns)
        await execute(
            session, f"UPDATE payments.{table} SET {sets} WHERE {column} = :_key", many_params
        )


async def insert(session: AsyncSession, row: DataclassInstance) -> None:
    await insert_many(session, [row])


async def insert_many(session: AsyncSession, new_rows: Sequence[DataclassInstance]) -> None:
    """Rows of one kind, every column, in one pipelined statement."""
    if not new_rows:
        return
    table, _ = TABLES[type(new_rows[0])]
    names = [f.name for f in fields(new_rows[0])]
    await execute(
        session,
        f"INSERT INTO payments.{table} ({', '.join(names)}) "
        f"VALUES ({', '.join(placeholder(c) for c in names)})",
        [{c: param(c, getattr(row, c)) for c in names} for row in new_rows],
    )


async def save(session: AsyncSession, before: R, after: R) -> None:
    """Write what a decision changed from ``before`` to ``after`` (nothing when nothing did)."""
    table, column = TABLES[type(after)]
    changed = changes(before, after)
    if not changed:
        return
    sets = ", ".join(f"{c} = {placeholder(c)}" for c in changed)
    await execute(
        session,
        f"UPDATE payments.{table} SET {sets} WHERE {column} = :_key",
        {"_key": getattr(before, column), **{c: param(c, v) for c, v in changed.items()}},
    )


async def lock_key(session: AsyncSession, *keys: str) -> None:
    """Serialise decisions that must see each other (seats, velocity, payout runs): each
    key's lock, in the order given (one statement; the rows of ``unnest`` come in order)."""
    await execute(
        session,
        "SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(:keys::text[]) AS k",
        {"keys": list(keys)},
    )


async def page(
    session: AsyncSession,
    kind: type[R],
    filters: Mapping[str, Any],
    *,
    order: str,
    limit: int,
    after: uuid.UUID | None,
) -> list[R]:
    """A page in (``order`` desc, id desc) order; ``after`` is the last id of the previous page."""
    table, column = TABLES[kind]
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
    return await many(session, kind, sql, params)
