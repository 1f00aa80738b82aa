"""The personal data keys: one per account, the only way to read its personal data.
Deleting a key is the erasure (crypto-shredding): every copy of the ciphertext, backups
included, becomes unreadable."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import executemany


async def insert_key(session: AsyncSession, account_id: uuid.UUID, data_key: bytes) -> None:
    await session.execute(
        text("INSERT INTO accounts.personal_keys (account_id, data_key) VALUES (:a, :k)"),
        {"a": account_id, "k": data_key},
    )


async def insert_keys(session: AsyncSession, keys: list[tuple[uuid.UUID, bytes]]) -> None:
    await executemany(
        session, "INSERT INTO accounts.personal_keys (account_id, data_key) VALUES ($1, $2)", keys
    )


async def data_key(session: AsyncSession, account_id: uuid.UUID) -> bytes | None:
    key: bytes | None = await session.scalar(
        text("SELECT data_key FROM accounts.personal_keys WHERE account_id = :a"),
        {"a": account_id},
    )
    return key


async def delete_key(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text("DELETE FROM accounts.personal_keys WHERE account_id = :a"), {"a": account_id}
    )
