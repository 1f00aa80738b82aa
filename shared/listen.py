"""A PostgreSQL channel heard on a connection of its own (``LISTEN``), for a task that
would otherwise poll: the outbox relay hears the rows other processes commit."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import is_transient

log = logging.getLogger(__name__)


class ChannelListener:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channel: str,
        on_notice: Callable[[], None],
        owner: str,
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.on_notice = on_notice
        self.owner = owner
        self._connection: AsyncConnection | None = None

    @property
    def listening(self) -> bool:
        return self._connection is not None

    async def ensure(self) -> bool:
        """Listening now (again after the server went away); False where the database
        cannot be heard this way, and the caller polls."""
        if self._connection is not None:
            driver = (await self._connection.get_raw_connection()).driver_connection
            if driver is not None and not driver.is_closed():
                return True
            await self.close()
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine) or engine.dialect.driver != "asyncpg":
            return False
        connection = await engine.connect()
        try:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.add_listener(self.channel, lambda *_: self.on_notice())
        except Exception as exc:
            await self._discard(connection)
            if is_transient(exc):
                raise
            log.warning("%s polls instead of listening on %s: %s", self.owner, self.channel, exc)
            return False
        self._connection = connection
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._discard(connection)

    @staticmethod
    async def _discard(connection: AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await connection.invalidate()  # never back to the pool while it listens
        with contextlib.suppress(Exception):
            await connection.close()
