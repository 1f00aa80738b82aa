"""The Bitstring Status Lists: each list's counter of indices handed out, its signed
document as served, and the revoked indices it is built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all, fetch_one, locked


@dataclass(frozen=True)
class StatusListRow:
    list_id: int
    size: int
    handed_out: int
    document: str | None
    etag: str | None
    updated_at: datetime


COLUMNS = "list_id, size, handed_out, document, etag, updated_at"


async def get(session: AsyncSession, list_id: int, *, lock: bool = False) -> StatusListRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.status_lists WHERE list_id = :l"
    return await fetch_one(session, StatusListRow, locked(sql, lock), {"l": list_id})


async def all_lists(session: AsyncSession) -> list[StatusListRow]:
    sql = f"SELECT {COLUMNS} FROM catalogue.status_lists ORDER BY list_id"
    return await fetch_all(session, StatusListRow, sql, {})


async def open_list(session: AsyncSession) -> StatusListRow | None:
    """The newest list, locked: the one indices are handed out from."""
    sql = f"SELECT {COLUMNS} FROM catalogue.status_lists ORDER BY list_id DESC LIMIT 1 FOR UPDATE"
    return await fetch_one(session, StatusListRow, sql, {})


async def create(session: AsyncSession, list_id: int, size: int, now: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.status_lists (list_id, size, updated_at) "
            "VALUES (:l, :size, :now)"
        ),
        {"l": list_id, "size": size, "now": now},
    )


async def hand_out(session: AsyncSession, list_id: int) -> None:
    await session.execute(
        text("UPDATE catalogue.status_lists SET handed_out = handed_out + 1 WHERE list_id = :l"),
        {"l": list_id},
    )


async def publish(
    session: AsyncSession, list_id: int, document: str, etag: str, now: datetime
) -> None:
    await session.execute(
        text(
            "UPDATE catalogue.status_lists SET document = :doc, etag = :etag, updated_at = :now "
            "WHERE list_id = :l"
        ),
        {"l": list_id, "doc": document, "etag": etag, "now": now},
    )


async def revoked_indices(session: AsyncSession, list_id: int) -> list[int]:
    rows = await session.scalars(
        text(
            "SELECT status_index FROM catalogue.credentials WHERE status_list = :l "
            "AND revoked_at IS NOT NULL"
        ),
        {"l": list_id},
    )
    return [int(i) for i in rows]
