"""One statement for everything appends write, one stream or many: the events (chained, in
the order given), the wallet, lot and reservation rows that changed, and the outbox rows, as
arrays unnested by data-modifying CTEs (one round trip, one plan the driver keeps
prepared). The caller holds the heads' locks and the shared append lock
(:func:`services.ledger.store.events.lock_heads`, or ``lock_head`` then ``take_append_lock``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.store.projections import (
    LOT_CHANGES,
    LOT_COLUMNS,
    RESERVATION_CHANGES,
    RESERVATION_COLUMNS,
    WALLET_COLUMNS,
)
from shared.db import driver

EVENT_TYPES = {
    "event_id": "uuid",
    "stream_id": "uuid",
    "version": "int",
    "type": "text",
    "schema_version": "int",
    "data": "jsonb",
    "metadata": "jsonb",
    "recorded_at": "timestamptz",
    "prev_hash": "text",
    "hash": "text",
}
OUTBOX_TYPES = {
    "event_id": "uuid",
    "topic": "text",
    "key": "text",
    "type": "text",
    "body": "bytea",
    "bulk": "bool",
}


def _insert(
    table: str, types: dict[str, str], first: int, upsert: tuple[str, ...] | None
) -> tuple[str, int]:
    """``INSERT ... SELECT FROM unnest(...)`` of ``types``' columns from parameters
    ``$first...``; jsonb and array columns travel as text (an array of arrays would have to
    be rectangular)."""
    columns = list(types)
    params, picks = [], []
    for i, kind in enumerate(types.values()):
        travels = "text" if kind in ("jsonb", "int[]") else kind
        params.append(f"${first + i}::{travels}[]")
        picks.append(f"c{i}::{kind}" if travels != kind else f"c{i}")
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(picks)} "
        f"FROM unnest({', '.join(params)}) WITH ORDINALITY AS t({aliases}, n) ORDER BY n"
    )
    if upsert is not None:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in upsert)
        sql += f" ON CONFLICT ({columns[0]}) DO UPDATE SET {sets}"
    return sql, first + len(columns)


def _statement(outbox_table: str) -> str:
    parts, n = [], 1
    for name, table, types, upsert in (
        ("e", "ledger.events", EVENT_TYPES, None),
        ("w", "ledger.wallets", WALLET_COLUMNS, tuple(WALLET_COLUMNS)[1:]),
        ("l", "ledger.lots", LOT_COLUMNS, LOT_CHANGES),
        ("r", "ledger.reservations", RESERVATION_COLUMNS, RESERVATION_CHANGES),
        ("o", outbox_table, OUTBOX_TYPES, None),
    ):
        sql, n = _insert(table, types, n, upsert)
        parts.append(f"{name} AS ({sql})")
    return "WITH " + ", ".join(parts) + " SELECT 1"


_STATEMENTS: dict[str, str] = {}


def columns(rows: Sequence[dict[str, Any]], types: dict[str, str]) -> list[list[Any]]:
    """``rows`` as the columns of ``types``, in order (int[] values as array literals)."""
    out: list[list[Any]] = [[] for _ in types]
    for row in rows:
        for i, column in enumerate(types):
            value = row[column]
            if types[column] == "int[]":
                value = "{" + ",".join(str(v) for v in value) + "}"
            out[i].append(value)
    return out


async def write(
    session: AsyncSession,
    outbox_table: str,
    events: Sequence[dict[str, Any]],
    wallets: Sequence[dict[str, Any]],
    lots: Sequence[dict[str, Any]],
    reservations: Sequence[dict[str, Any]],
    outbox: Sequence[dict[str, Any]],
) -> None:
    """Write it all in one statement (jsonb values already serialised to text)."""
    await write_columns(
        session,
        outbox_table,
        [
            *columns(events, EVENT_TYPES),
            *columns(wallets, WALLET_COLUMNS),
            *columns(lots, LOT_COLUMNS),
            *columns(reservations, RESERVATION_COLUMNS),
            *columns(outbox, OUTBOX_TYPES),
        ],
    )


async def write_columns(session: AsyncSession, outbox_table: str, args: list[list[Any]]) -> None:
    """:func:`write` of rows already laid out as the statement's columns: the events',
    wallets', lots', reservations' and outbox's, each table's in its order."""
    sql = _STATEMENTS.get(outbox_table)
    if sql is None:
        sql = _STATEMENTS[outbox_table] = _statement(outbox_table)
    await (await driver(session)).execute(sql, *args)
