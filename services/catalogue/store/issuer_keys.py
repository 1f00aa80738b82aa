"""The issuer's keyring (rows of ``issuer_keys``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain.credentials.keyring import KeyRecord
from shared.db import fetch_all, fetch_one, locked

KEY_COLUMNS = "kid, public_key, wrapped_private, created_at, retired_at, revoked_after"


async def all_keys(session: AsyncSession) -> list[KeyRecord]:
    sql = f"SELECT {KEY_COLUMNS} FROM catalogue.issuer_keys ORDER BY created_at"
    return await fetch_all(session, KeyRecord, sql, {})


async def get(session: AsyncSession, kid: str, *, lock: bool = False) -> KeyRecord | None:
    sql = f"SELECT {KEY_COLUMNS} FROM catalogue.issuer_keys WHERE kid = :kid"
    return await fetch_one(session, KeyRecord, locked(sql, lock), {"kid": kid})


async def current(session: AsyncSession, *, lock: bool = False) -> KeyRecord | None:
    sql = f"SELECT {KEY_COLUMNS} FROM catalogue.issuer_keys WHERE retired_at IS NULL"
    return await fetch_one(session, KeyRecord, locked(sql, lock), {})


async def lock_keyring(session: AsyncSession) -> None:
    """Serialise changes of the keyring (first key, rotation, revocation)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('catalogue.issuer_keys'))"))


async def insert(session: AsyncSession, record: KeyRecord) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.issuer_keys (kid, public_key, wrapped_private, created_at) "
            "VALUES (:kid, :public_key, :wrapped_private, :created_at)"
        ),
        {
            "kid": record.kid,
            "public_key": record.public_key,
            "wrapped_private": record.wrapped_private,
            "created_at": record.created_at,
        },
    )


async def retire(session: AsyncSession, kid: str, now: datetime) -> None:
    await session.execute(
        text("UPDATE catalogue.issuer_keys SET retired_at = :now WHERE kid = :kid"),
        {"kid": kid, "now": now},
    )


async def revoke(session: AsyncSession, kid: str, after: datetime, reason: str) -> None:
    await session.execute(
        text(
            "UPDATE catalogue.issuer_keys SET revoked_after = :after, "
            "revocation_reason = :reason WHERE kid = :kid"
        ),
        {"kid": kid, "after": after, "reason": reason},
    )


async def signed_after(session: AsyncSession, kid: str, after: datetime) -> int:
    """How many credentials the key signed after ``after`` (they no longer verify)."""
    count = await session.scalar(
        text(
            "SELECT count(*) FROM catalogue.credentials WHERE key_id = :kid AND issued_at > :after"
        ),
        {"kid": kid, "after": after},
    )
    return int(count or 0)
