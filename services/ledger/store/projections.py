"""The ledger's projections: the wallet, lot and reservation rows each append leaves (what
changed, written in the append's transaction), the account-to-agency map the scope rule
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
from shared.db import executemany


def _lot_row(account_id: uuid.UUID, lot: Any) -> dict[str, Any]:
    return {
        "lot_id": lot.lot_id,
        "account_id": account_id,
        "funder_id": lot.funder_id,
        "kind": lot.kind,
        "year": lot.year,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "reserved": lot.reserved,
        "spent": lot.spent,
        "expired": lot.expired,
        "expires_at": lot.expires_at,
        "earmark": json.dumps(lot.earmark.model_dump(mode="json")) if lot.earmark else None,
        "reason": lot.reason_code,
        "granted_at": lot.granted_at,
    }


def _reservation_row(account_id: uuid.UUID, r: Any) -> dict[str, Any]:
    return {
        "reservation_id": r.reservation_id,
        "account_id": account_id,
        "enrolment_id": r.enrolment_id,
        "amount": r.amount,
        "captured": r.captured,
        "released": r.released,
        "status": r.status,
        "expires_at": r.expires_at,
        "allocations": json.dumps([a.model_dump(mode="json") for a in r.allocations]),
        "reserved_at": r.reserved_at,
    }


def wallet_row(state: WalletState, head_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "account_id": state.account_id,
        "status": state.status,
        "profile": json.dumps(state.profile.model_dump(mode="json")) if state.profile else None,
        "version": state.version,
        "head_hash": head_hash,
        "available": state.available,
        "reserved": state.reserved,
        "granted_total": state.granted_total,
        "spent_total": state.spent_total,
        "expired_total": state.expired_total,
        "years_granted": sorted(state.years_granted),
        "updated_at": now,
    }


WALLET_COLUMNS = (
    "account_id",
    "status",
    "profile",
    "version",
    "head_hash",
    "available",
    "reserved",
    "granted_total",
    "spent_total",
    "expired_total",
    "years_granted",
    "updated_at",
)
LOT_COLUMNS = (
    "lot_id",
    "account_id",
    "funder_id",
    "kind",
    "year",
    "amount",
    "remaining",
    "reserved",
    "spent",
    "expired",
    "expires_at",
    "earmark",
    "reason",
    "granted_at",
)
RESERVATION_COLUMNS = (
    "reservation_id",
    "account_id",
    "enrolment_id",
    "amount",
    "captured",
    "released",
    "status",
    "expires_at",
    "allocations",
    "reserved_at",
)
JSONB = {"profile", "earmark", "allocations"}


def _upsert(table: str, columns: tuple[str, ...], updated: tuple[str, ...]) -> str:
    values = ", ".join(
        f"${i}" + ("::jsonb" if c in JSONB else "") for i, c in enumerate(columns, 1)
    )
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    return (
        f"INSERT INTO ledger.{table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {sets}"
    )


UPSERT_WALLET = _upsert("wallets", WALLET_COLUMNS, WALLET_COLUMNS[1:])
UPSERT_LOT = _upsert("lots", LOT_COLUMNS, ("remaining", "reserved", "spent", "expired"))
UPSERT_RESERVATION = _upsert(
    "reservations", RESERVATION_COLUMNS, ("amount", "captured", "released", "status")
)


def _tuples(rows: Sequence[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


async def save_projection(
    session: AsyncSession,
    before: WalletState,
    after: WalletState,
    head_hash: str,
    now: datetime,
) -> None:
    """Write what changed between ``before`` and ``after`` (same transaction as the append)."""
    await save_projections_bulk(session, [(before, after, head_hash)], now)


def changed_rows(
    items: Sequence[tuple[WalletState, WalletState, str]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The wallet, lot and reservation rows that changed between each ``before`` and
    ``after``."""
    wallets, lots, reservations = [], [], []
    for before, after, head_hash in items:
        assert after.account_id is not None  # set by the first event folded
        wallets.append(wallet_row(after, head_hash, now))
        lots += [
            _lot_row(after.account_id, lot)
            for lot_id, lot in after.lots.items()
            if before.lots.get(lot_id) != lot
        ]
        reservations += [
            _reservation_row(after.account_id, r)
            for rid, r in after.reservations.items()
            if before.reservations.get(rid) != r
        ]
    return wallets, lots, reservations


async def save_projections_bulk(
    session: AsyncSession, items: Sequence[tuple[WalletState, WalletState, str]], now: datetime
) -> None:
    """What changed in each wallet, all wallets at once: one statement per table."""
    wallets, lots, reservations = changed_rows(items, now)
    await executemany(session, UPSERT_WALLET, _tuples(wallets, WALLET_COLUMNS))
    await executemany(session, UPSERT_LOT, _tuples(lots, LOT_COLUMNS))
    await executemany(session, UPSERT_RESERVATION, _tuples(reservations, RESERVATION_COLUMNS))


async def wallet(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text("SELECT * FROM ledger.wallets WHERE account_id = :a"), {"a": account_id}
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


async def open_lots(session: AsyncSession, account_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT lot_id, funder_id, kind, year, amount, remaining, reserved, expires_at, "
            "earmark, granted_at FROM ledger.lots WHERE account_id = :a AND remaining > 0 "
            "ORDER BY granted_at, lot_id"
        ),
        {"a": account_id},
    )
    return [dict(r) for r in rows.mappings()]


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


async def agency_of(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    agency: str | None = await session.scalar(
        text("SELECT agency_id FROM ledger.account_agencies WHERE account_id = :a"),
        {"a": account_id},
    )
    return agency


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
    by_funder = (await session.execute(text(STATS_SQL), scope)).mappings().all()
    trained = (await session.execute(text(TRAINED_SQL), scope)).mappings().all()
    return [dict(r) for r in by_funder], [dict(r) for r in trained]
