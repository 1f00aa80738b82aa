"""What auditors read: every event in global order (never skipping one that commits late),
all streams in stream order for verification, and the projection rows to compare them with.

Two concurrent appends can commit out of position order, so a paging reader asks
:func:`horizon` for a position below which nothing can still commit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.store.events import APPEND_LOCK, EVENT_COLUMNS, EventRow, event_row
from shared.db import fetch_all


async def horizon(session: AsyncSession) -> int:
    """A position such that every event at or below it has committed (or never will).

    Appenders hold ``APPEND_LOCK`` shared from before they draw a position until they
    commit. Read the last position drawn first; if no appender holds the lock afterwards,
    everything up to it is settled. Otherwise wait for the in-flight appenders (an
    exclusive request waits for them and briefly holds back new ones), then read again.
    """
    last = await session.scalar(
        text(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ledger.events_position_seq"
        )
    )
    busy = await session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
            "AND objid = :o AND granted AND pid <> pg_backend_pid()"
        ),
        {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
    )
    if not busy:
        return int(last or 0)
    # wait for the in-flight appenders in a transaction of its own: the lock is
    # transaction-scoped, so it goes with the transaction however this call ends (a
    # cancelled request included) and can never be left behind to block every append
    engine = (await session.connection()).engine
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:c, :o)"),
            {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
        )
        last = await conn.scalar(
            text(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                "FROM ledger.events_position_seq"
            )
        )
    return int(last or 0)


async def events_page(session: AsyncSession, after: int, upto: int, limit: int) -> list[EventRow]:
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE position > :after "
        "AND position <= :upto ORDER BY position LIMIT :n"
    )
    return await fetch_all(session, EventRow, sql, {"after": after, "upto": upto, "n": limit})


async def all_events(session: AsyncSession) -> AsyncIterator[EventRow]:
    """Every event, stream after stream, each stream in version order (streamed)."""
    result = await session.stream(
        text(f"SELECT {EVENT_COLUMNS} FROM ledger.events ORDER BY stream_id, version"),
        execution_options={"yield_per": 5000},
    )
    async for raw in result:
        yield event_row(raw)


async def _by_account(
    session: AsyncSession, sql: str, key: str
) -> dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]]:
    out: dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]] = {}
    for r in (await session.execute(text(sql))).mappings():
        out.setdefault(r["account_id"], {})[r[key]] = dict(r)
    return out


Rows = dict[uuid.UUID, dict[str, Any]]


async def projection_rows(
    session: AsyncSession,
) -> tuple[Rows, dict[uuid.UUID, Rows], dict[uuid.UUID, Rows]]:
    """The wallet rows by account, and the lot and reservation rows by account and id."""
    wallets = {
        r["account_id"]: dict(r)
        for r in (await session.execute(text("SELECT * FROM ledger.wallets"))).mappings()
    }
    lots = await _by_account(
        session,
        "SELECT account_id, lot_id, remaining, reserved, spent, expired FROM ledger.lots",
        "lot_id",
    )
    reservations = await _by_account(
        session,
        "SELECT account_id, reservation_id, status, amount, captured, released "
        "FROM ledger.reservations",
        "reservation_id",
    )
    return wallets, lots, reservations
