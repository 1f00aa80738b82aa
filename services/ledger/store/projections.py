"""The ledger's projections: the wallet, lot and reservation rows each append leaves (what
changed, written with the append by :mod:`.batch`), the account-to-agency map the scope rule
reads, and the reads built on them (balances, due expiries, yearly statistics)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import WalletState
from shared.db import fetch_all, fetch_one

WALLET_COLUMNS = {  # column: SQL type, in the table's order
    "account_id": "uuid",
    "status": "text",
    "profile": "jsonb",
    "version": "int",
    "head_hash": "text",
    "available": "bigint",
    "reserved": "bigint",
    "granted_total": "bigint",
    "spent_total": "bigint",
    "expired_total": "bigint",
    "years_granted": "int[]",
    "updated_at": "timestamptz",
}
LOT_COLUMNS = {
    "lot_id": "uuid",
    "account_id": "uuid",
    "funder_id": "text",
    "kind": "text",
    "year": "int",
    "amount": "bigint",
    "remaining": "bigint",
    "reserved": "bigint",
    "spent": "bigint",
    "expired": "bigint",
    "expires_at": "timestamptz",
    "earmark": "jsonb",
    "reason": "text",
    "granted_at": "timestamptz",
}
RESERVATION_COLUMNS = {
    "reservation_id": "uuid",
    "account_id": "uuid",
    "enrolment_id": "uuid",
    "amount": "bigint",
    "captured": "bigint",
    "released": "bigint",
    "status": "text",
    "expires_at": "timestamptz",
    "allocations": "jsonb",
    "reserved_at": "timestamptz",
}

WALLET_FIGURES = (
    "status",
    "version",
    "available",
    "reserved",
    "granted_total",
    "spent_total",
    "expired_total",
)
"""The wallet row's columns that hold the state's figures as they are."""
LOT_CHANGES = ("remaining", "reserved", "spent", "expired")
RESERVATION_CHANGES = ("status", "amount", "captured", "released")
"""The columns of a lot row and of a reservation row that later events change."""


def _row(item: Any, columns: dict[str, str], **given: Any) -> dict[str, Any]:
    """``columns`` read from ``item``'s attributes, but for those ``given``."""
    return {c: given[c] if c in given else getattr(item, c) for c in columns}


def _json(model: Any) -> str | None:
    return json.dumps(model.model_dump(mode="json")) if model is not None else None


def wallet_row(state: WalletState, head_hash: str, now: datetime) -> dict[str, Any]:
    return _row(
        state,
        WALLET_COLUMNS,
        profile=_json(state.profile),
        head_hash=head_hash,
        years_granted=sorted(state.years_granted),
        updated_at=now,
    )


def changed_rows(
    items: Sequence[tuple[WalletState, WalletState, str]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The wallet, lot and reservation rows that changed between each ``before`` and
    ``after`` (jsonb values serialised to text)."""
    wallets, lots, reservations = [], [], []
    for before, after, head_hash in items:
        account = after.account_id
        assert account is not None  # set by the first event folded
        wallets.append(wallet_row(after, head_hash, now))
        more_lots, more_reservations = changed_items(before, after)
        lots += more_lots
        reservations += more_reservations
    return wallets, lots, reservations


def changed_items(
    before: WalletState, after: WalletState
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lot and reservation rows that changed between ``before`` and ``after`` (a lot or
    a reservation an event did not touch is the same object in both)."""
    account = after.account_id
    lots = [
        _row(
            lot,
            LOT_COLUMNS,
            account_id=account,
            earmark=_json(lot.earmark),
            reason=lot.reason_code,
        )
        for lot_id, lot in after.lots.items()
        if (old := before.lots.get(lot_id)) is not lot and old != lot
    ]
    reservations = [
        _row(
            r,
            RESERVATION_COLUMNS,
            account_id=account,
            allocations=json.dumps([a.model_dump(mode="json") for a in r.allocations]),
        )
        for rid, r in after.reservations.items()
        if (old_r := before.reservations.get(rid)) is not r and old_r != r
    ]
    return lots, reservations


async def wallet(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Any] | None:
    return await fetch_one(
        session, dict, "SELECT * FROM ledger.wallets WHERE account_id = :a", {"a": account_id}
    )


async def open_lots(session: AsyncSession, account_id: uuid.UUID) -> list[dict[str, Any]]:
    sql = (
        "SELECT lot_id, funder_id, kind, year, amount, remaining, reserved, expires_at, "
        "earmark, granted_at FROM ledger.lots WHERE account_id = :a AND remaining > 0 "
        "ORDER BY granted_at, lot_id"
    )
    return await fetch_all(session, dict, sql, {"a": account_id})


async def accounts_with_due_items(
    session: AsyncSession, now: datetime, limit: int
) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "SELECT account_id FROM ledger.lots WHERE remaining > reserved AND expires_at <= :now "
            "UNION SELECT account_id FROM ledger.reservations WHERE status = 'active' "
            "AND expires_at <= :now LIMIT :n"
        ),
        {"now": now, "n": limit},
    )
    return [r[0] for r in rows]


async def set_agency(session: AsyncSession, account_id: uuid.UUID, agency_id: str) -> None:
    await session.execute(
        text(
            "INSERT INTO ledger.account_agencies (account_id, agency_id) VALUES (:a, :g) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id"
        ),
        {"a": account_id, "g": agency_id},
    )


async def agencies_of(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The managing agency of each of ``account_ids`` that has one, in one query."""
    if not account_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT account_id, agency_id FROM ledger.account_agencies WHERE account_id = ANY(:a)"
        ),
        {"a": list(account_ids)},
    )
    return {account_id: agency_id for account_id, agency_id in rows}


IN_SCOPE = """(CAST(:agency AS text) IS NULL OR account_id IN
    (SELECT account_id FROM ledger.account_agencies WHERE agency_id = CAST(:agency AS text)))"""
STATS_SQL = f"""
SELECT EXTRACT(YEAR FROM granted_at)::int AS year, funder_id,
       sum(amount)::bigint AS granted, sum(spent)::bigint AS spent, sum(expired)::bigint AS expired
FROM ledger.lots WHERE {IN_SCOPE} GROUP BY 1, 2 ORDER BY 1, 2
"""
TRAINED_SQL = f"""
SELECT EXTRACT(YEAR FROM reserved_at)::int AS year, count(DISTINCT account_id) AS accounts
FROM ledger.reservations WHERE captured > 0 AND {IN_SCOPE} GROUP BY 1
"""


async def yearly_stats(
    session: AsyncSession, agency_id: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per year and funder: granted, spent, expired; per year: the accounts that trained
    (captured something). ``agency_id``: only the accounts it manages (None: all)."""
    scope = {"agency": agency_id}
    by_funder: list[dict[str, Any]] = await fetch_all(session, dict, STATS_SQL, scope)
    return by_funder, await fetch_all(session, dict, TRAINED_SQL, scope)
