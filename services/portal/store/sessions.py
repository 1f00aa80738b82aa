"""The sessions table."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession


async def insert(
    session: AsyncSession,
    session_id: str,
    account_id: uuid.UUID | None,
    csrf_secret: str,
    data: dict[str, Any],
    now: datetime,
    expires_at: datetime,
) -> None:
    """A row of the sessions table: a signed-in session, or (no account) a sign-in under way."""
    await session.execute(
        text(
            "INSERT INTO portal.sessions (session_id, account_id, csrf_secret, data, "
            "created_at, expires_at) VALUES (:id, :account, :secret, CAST(:data AS jsonb), "
            ":now, :expires)"
        ),
        {
            "id": session_id,
            "account": account_id,
            "secret": csrf_secret,
            "data": json.dumps(data),
            "now": now,
            "expires": expires_at,
        },
    )


async def delete(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        text("DELETE FROM portal.sessions WHERE session_id = :id"), {"id": session_id}
    )


async def live(session: AsyncSession, session_id: str, now: datetime) -> Row[Any] | None:
    """The session's account and CSRF secret, unless it expired or signed nobody in."""
    return (
        await session.execute(
            text(
                "SELECT account_id, csrf_secret, data FROM portal.sessions "
                "WHERE session_id = :id AND expires_at > :now AND account_id IS NOT NULL"
            ),
            {"id": session_id, "now": now},
        )
    ).first()


async def sweep(session: AsyncSession, now: datetime) -> int:
    """Delete expired sessions; how many."""
    result = await session.execute(
        text("DELETE FROM portal.sessions WHERE expires_at <= :now"), {"now": now}
    )
    return int(getattr(result, "rowcount", 0) or 0)
