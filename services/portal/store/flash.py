"""A message kept in a session's ``data`` until the next page shows it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def put(session: AsyncSession, session_id: str, message: dict[str, Any]) -> None:
    await session.execute(
        text(
            "UPDATE portal.sessions SET data = data || jsonb_build_object('flash', "
            "CAST(:message AS jsonb)) WHERE session_id = :id"
        ),
        {"id": session_id, "message": json.dumps(message)},
    )


async def take(session: AsyncSession, session_id: str) -> dict[str, Any] | None:
    """The session's message, removed so that it shows once."""
    row = (
        await session.execute(
            text(
                "WITH old AS (SELECT data -> 'flash' AS flash FROM portal.sessions "
                "WHERE session_id = :id AND data ? 'flash' FOR UPDATE) "
                "UPDATE portal.sessions s SET data = s.data - 'flash' FROM old "
                "WHERE s.session_id = :id RETURNING old.flash"
            ),
            {"id": session_id},
        )
    ).first()
    return dict(row.flash) if row is not None and isinstance(row.flash, dict) else None
