"""Sign-ins under way: a row of the sessions table that signs nobody in (no account yet),
holding the flow's ``state``, ``nonce``, PKCE verifier, callback and the page asked for.
Taken once: the callback deletes it as it reads it, so a replayed callback finds nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.portal.store import sessions


async def insert_pending(
    session: AsyncSession,
    pending_id: str,
    csrf_secret: str,
    data: dict[str, Any],
    now: datetime,
    expires_at: datetime,
) -> None:
    await sessions.insert(session, pending_id, None, csrf_secret, data, now, expires_at)


async def take_pending(
    session: AsyncSession, pending_id: str, now: datetime
) -> dict[str, Any] | None:
    """The sign-in's data, deleted as it is read; None when unknown, used or expired."""
    row = (
        await session.execute(
            text(
                "DELETE FROM portal.sessions WHERE session_id = :id AND account_id IS NULL "
                "RETURNING data, expires_at"
            ),
            {"id": pending_id},
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    data: dict[str, Any] = row.data
    return data
