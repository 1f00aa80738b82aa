"""The personal data keys: one per account, the only way to read its personal data, stored
wrapped by a key-encryption key that is never in the database (``ILA_ACCOUNTS_KEK``).
Deleting a key is the erasure (crypto-shredding): every copy of the ciphertext, backups
included, becomes unreadable; and a copy of this table alone opens nothing without the
key-encryption key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import executemany, fetch_rows


@dataclass(frozen=True)
class WrappedKey:
    """A data key as stored: encrypted under the key-encryption key ``kek_id``."""

    kek_id: str
    wrapped: bytes


async def insert_keys(session: AsyncSession, keys: list[tuple[uuid.UUID, WrappedKey]]) -> None:
    await executemany(
        session,
        "INSERT INTO accounts.personal_keys (account_id, kek_id, wrapped_key) VALUES ($1, $2, $3)",
        [(account_id, k.kek_id, k.wrapped) for account_id, k in keys],
    )


async def wrapped_key(session: AsyncSession, account_id: uuid.UUID) -> WrappedKey | None:
    return (await wrapped_keys(session, [account_id])).get(account_id)


async def wrapped_keys(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, WrappedKey]:
    """The stored data keys of ``account_ids`` (the erased have none), by account."""
    if not account_ids:
        return {}
    rows = await fetch_rows(
        session,
        "SELECT account_id, kek_id, wrapped_key FROM accounts.personal_keys "
        "WHERE account_id = ANY(:a)",
        {"a": list(account_ids)},
    )
    return {r["account_id"]: WrappedKey(r["kek_id"], r["wrapped_key"]) for r in rows}


async def wrapped_elsewhere(
    session: AsyncSession, kek_id: str, limit: int
) -> list[tuple[uuid.UUID, WrappedKey]]:
    """Up to ``limit`` keys wrapped by another key-encryption key than ``kek_id``, locked."""
    rows = await session.execute(
        text(
            "SELECT account_id, kek_id, wrapped_key FROM accounts.personal_keys "
            "WHERE kek_id <> :k ORDER BY account_id LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"k": kek_id, "n": limit},
    )
    return [(r.account_id, WrappedKey(r.kek_id, bytes(r.wrapped_key))) for r in rows]


async def rewrap(session: AsyncSession, keys: list[tuple[uuid.UUID, WrappedKey]]) -> None:
    await executemany(
        session,
        "UPDATE accounts.personal_keys SET kek_id = $2, wrapped_key = $3 WHERE account_id = $1",
        [(account_id, k.kek_id, k.wrapped) for account_id, k in keys],
    )


async def delete_key(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text("DELETE FROM accounts.personal_keys WHERE account_id = :a"), {"a": account_id}
    )
