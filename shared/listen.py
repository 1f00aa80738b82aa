"""A PostgreSQL channel heard on a connection of its own (``LISTEN``), for a task that
would otherwise poll: the outbox relay hears the rows other processes commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import is_transient, pooled_driver

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
        # the asyncpg connection that listens: once detached from the pool, the proxy above
        # no longer names it
        self._driver: Any = None

    @property
    def listening(self) -> bool:
        return self._connection is not None

    async def ensure(self) -> bool:
        """Listening now (again after the server went away); False where the database
        cannot be heard this way, and the caller polls."""
        if self._connection is not None:
            if self._driver is not None and not self._driver.is_closed():
                return True
            await self.close()
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine) or engine.dialect.driver != "asyncpg":
            return False
        connection = await engine.connect()
        driver = None
        try:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            # out of the pool for good: its place there is free for the requests and
            # transactions the pool is sized for (a fixed pool, ``db_max_overflow`` 0, would
            # otherwise lose a connection to each service's relay)
            raw.detach()
            await driver.add_listener(self.channel, lambda *_: self.on_notice())
        except Exception as exc:
            await self._discard(connection, driver)
            if is_transient(exc):
                raise
            log.warning("%s polls instead of listening on %s: %s", self.owner, self.channel, exc)
            return False
        self._connection, self._driver = connection, driver
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        driver, self._driver = self._driver, None
        if connection is not None:
            await self._discard(connection, driver)

    @staticmethod
    async def _discard(connection: AsyncConnection, driver: Any) -> None:
        with contextlib.suppress(Exception):
            await connection.invalidate()  # never back to the pool while it listens
        with contextlib.suppress(Exception):
            await connection.close()
        if driver is not None:
            with contextlib.suppress(Exception):
                await driver.close(timeout=5)


# Announcing: a service's relays in other processes (replicas, CLI commands' writers) hear
# of committed outbox rows on its channel. The notice is sent after the writing transaction
# committed, in a transaction of its own: a ``pg_notify`` inside the writing transaction
# would take PostgreSQL's global notify lock from before its commit until the commit is
# flushed, so that no two writers could share a WAL flush. Here the notice's own commit does
# not wait for the flush (``synchronous_commit`` off: a notice lost in a crash costs a
# relay's poll, never a row), and one notice stands for every commit made while the last
# was being sent.

_announcing: dict[tuple[AsyncEngine, str], asyncio.Task[None]] = {}
_again: set[tuple[AsyncEngine, str]] = set()

_ANNOUNCE = "SELECT set_config('synchronous_commit', 'off', true), pg_notify('{channel}', '')"


def announce(engine: object, channel: str) -> None:
    """Send a notice on ``channel`` soon (one for every call made while one is in flight);
    nothing where ``engine`` is not an asyncpg engine (no channel to be heard on)."""
    if not isinstance(engine, AsyncEngine) or engine.dialect.driver != "asyncpg":
        return
    key = (engine, channel)
    loop = asyncio.get_running_loop()
    task = _announcing.get(key)
    if task is not None and not task.done() and task.get_loop() is loop:
        _again.add(key)
        return
    _announcing[key] = loop.create_task(_announce(key), name=f"announce {channel}")


async def _announce(key: tuple[AsyncEngine, str]) -> None:
    engine, channel = key
    while True:
        _again.discard(key)
        try:
            async with pooled_driver(engine) as driver:
                # outside any transaction: the statement is its own, one round trip
                await driver.execute(_ANNOUNCE.format(channel=channel.replace("'", "''")))
        except Exception as exc:  # the listeners poll as well: late, not lost
            log.warning("could not announce on %s: %s", channel, exc)
            return
        if key not in _again:
            return


async def announced(engine: AsyncEngine) -> None:
    """Wait for the notices ``engine`` still has to send (before it is disposed of)."""
    tasks = [t for (e, _), t in list(_announcing.items()) if e is engine and not t.done()]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    for key in [k for k in _announcing if k[0] is engine]:
        del _announcing[key]
