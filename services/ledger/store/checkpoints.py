"""Reads and writes of ``ledger.checkpoints`` (signed stream-head checkpoints) and the
event counts and hashes they are taken from and checked against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Checkpoint:
    """At ``at``, the store held ``event_count`` events at positions up to ``position``;
    the last of them was at ``head_position`` with hash ``head_hash``."""

    position: int
    head_position: int
    head_hash: str
    event_count: int
    key_id: str
    signature: str
    at: datetime
    checkpoint_id: int | None = None


COLUMNS = "checkpoint_id, position, head_position, head_hash, event_count, key_id, signature, at"


async def latest(session: AsyncSession) -> Checkpoint | None:
    row = (
        await session.execute(
            text(
                f"SELECT {COLUMNS} FROM ledger.checkpoints ORDER BY position DESC, at DESC LIMIT 1"
            )
        )
    ).first()
    return Checkpoint(**row._mapping) if row is not None else None


async def every(session: AsyncSession) -> list[Checkpoint]:
    rows = await session.execute(
        text(f"SELECT {COLUMNS} FROM ledger.checkpoints ORDER BY position, checkpoint_id")
    )
    return [Checkpoint(**r._mapping) for r in rows]


async def insert(session: AsyncSession, cp: Checkpoint) -> None:
    await session.execute(
        text(
            "INSERT INTO ledger.checkpoints (position, head_position, head_hash, event_count, "
            "key_id, signature, at) VALUES (:position, :head_position, :head_hash, "
            ":event_count, :key_id, :signature, :at)"
        ),
        {
            "position": cp.position,
            "head_position": cp.head_position,
            "head_hash": cp.head_hash,
            "event_count": cp.event_count,
            "key_id": cp.key_id,
            "signature": cp.signature,
            "at": cp.at,
        },
    )


async def count_between(session: AsyncSession, after: int, upto: int) -> int:
    n = await session.scalar(
        text("SELECT count(*) FROM ledger.events WHERE position > :a AND position <= :u"),
        {"a": after, "u": upto},
    )
    return int(n or 0)


async def head_at(session: AsyncSession, upto: int) -> tuple[int, str] | None:
    """The position and hash of the last event at or below ``upto``."""
    row = (
        await session.execute(
            text(
                "SELECT position, hash FROM ledger.events WHERE position <= :u "
                "ORDER BY position DESC LIMIT 1"
            ),
            {"u": upto},
        )
    ).first()
    return (int(row.position), str(row.hash)) if row is not None else None
