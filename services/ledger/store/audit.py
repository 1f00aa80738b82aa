"""What auditors read: every event in global order (never skipping one that commits late),
all streams in stream order for verification, and the projection rows to compare them with.

Two concurrent appends can commit out of position order, so a paging reader asks
:func:`horizon` for a position below which nothing can still commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.store.events import APPEND_LOCK, EVENT_COLUMNS, EventRow
from services.ledger.store.projections import WALLET_FIGURES
from shared.db import fetch_all


async def horizon(session: AsyncSession) -> int:
    """A position such that every event at or below it has committed (or never will).

    Appenders hold ``APPEND_LOCK`` shared from before they draw a position until they
    commit. Read the last position drawn, then the transactions holding the lock: any that
    drew a position up to it is among them. Once none of those holds it any more, everything
    up to it is settled. The wait takes no lock and no second connection: appenders that
    start meanwhile are not held back (they draw later positions), and a caller cancelled
    at any moment leaves nothing behind.
    """
    last = await session.scalar(
        text(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ledger.events_position_seq"
        )
    )
    waiting = await _appenders(session)
    pause = HORIZON_POLL
    while waiting:
        await asyncio.sleep(pause)
        pause = min(pause * 2, HORIZON_POLL_MOST)
        waiting &= await _appenders(session)
    return int(last or 0)


# appends hold the lock for a few milliseconds: look again soon, then less often
HORIZON_POLL = 0.001
HORIZON_POLL_MOST = 0.05


async def _appenders(session: AsyncSession) -> set[str]:
    """The transactions (virtual ids) of the other sessions holding the append lock."""
    rows = await session.execute(
        text(
            "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = :c AND objid = :o AND granted AND pid <> pg_backend_pid()"
        ),
        {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
    )
    return {r[0] for r in rows}


async def events_page(session: AsyncSession, after: int, upto: int, limit: int) -> list[EventRow]:
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE position > :after "
        "AND position <= :upto ORDER BY position LIMIT :n"
    )
    return await fetch_all(session, EventRow, sql, {"after": after, "upto": upto, "n": limit})


VERIFY_EVENTS = (
    "SELECT position, event_id::text, stream_id::text, version, type, schema_version, "
    "data::text, metadata::text, recorded_at, prev_hash, hash FROM ledger.events "
    "ORDER BY stream_id, version"
)
"""Every event for verify, stream after stream (rows of ``audit.streams.Row``): the ids as
text and the JSON columns as the text the canonical form is recomputed from."""


async def verify_events(conn: Any, page: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """``VERIFY_EVENTS`` in pages of ``page`` rows (plain tuples, which pickle), on the
    driver connection ``conn`` (in its transaction: one cursor, one snapshot)."""
    cursor = await conn.cursor(VERIFY_EVENTS)
    while rows := await cursor.fetch(page):
        yield [tuple(r) for r in rows]


WALLET_VERIFY = ("head_hash", *WALLET_FIGURES)
LOT_VERIFY = ("lot_id", "remaining", "reserved", "spent", "expired")
RESERVATION_VERIFY = ("reservation_id", "status", "amount", "captured", "released")
BUDGET_VERIFY = ("funder_id", "year", "amount", "drawn", "draws", "version", "head_hash")
"""The projection columns verify compares, in the order :func:`verify_projections` gives
them (ids as text: plain tuples pickle fast)."""

Projection = tuple[Any, ...]


async def verify_projections(
    conn: Any,
) -> tuple[
    dict[str, Projection],
    dict[str, list[Projection]],
    dict[str, list[Projection]],
    dict[str, Projection],
]:
    """For verify, keyed by stream id as text: each wallet's row, each account's lot rows
    and reservation rows, each budget's row (on the driver connection ``conn``)."""

    async def rows(table: str, key: str, columns: tuple[str, ...]) -> list[Any]:
        selected = ", ".join(f"{c}::text" if c.endswith("_id") else c for c in columns)
        return list(await conn.fetch(f"SELECT {key}::text, {selected} FROM ledger.{table}"))

    wallets = {r[0]: tuple(r)[1:] for r in await rows("wallets", "account_id", WALLET_VERIFY)}
    lots: dict[str, list[Projection]] = {}
    for r in await rows("lots", "account_id", LOT_VERIFY):
        lots.setdefault(r[0], []).append(tuple(r)[1:])
    reservations: dict[str, list[Projection]] = {}
    for r in await rows("reservations", "account_id", RESERVATION_VERIFY):
        reservations.setdefault(r[0], []).append(tuple(r)[1:])
    budgets = {r[0]: tuple(r)[1:] for r in await rows("budgets", "budget_id", BUDGET_VERIFY)}
    return wallets, lots, reservations, budgets
