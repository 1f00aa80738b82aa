"""Conditional reads that may wait for a change: ``ETag``, ``If-None-Match`` and
``Prefer: wait`` (RFC 9110 §13.1.2, RFC 7240 §4.3).

A client following an enrolment or a claim through the saga (proposed, confirmed,
captured) polled its ``GET`` again and again; in the reserve-and-capture benchmark nine
requests in ten were such polls. Here a ``GET`` answers with the entity tag of what it
sends; asked again with that tag in ``If-None-Match`` it answers ``304 Not Modified`` while
nothing changed, and with ``Prefer: wait=<seconds>`` it first waits, up to those seconds
(at most :data:`MOST_WAIT`), for the row to change: one request per change instead of one
per poll.

A waiting request holds no database connection. Every waiting request of a process is
watched by one query per tick (:class:`RowWatch`): the rows' ``xmin``, which PostgreSQL
changes with every update of a row, so that a change committed by any process (a replica,
a consumer) is seen. A change wakes the request, which reads the row again and answers
200 when what it would send differs from the tag, and waits on otherwise. The answer is
always read after the wait: a tag compares what would be sent now, never a cached copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import fetch_rows

log = logging.getLogger(__name__)

__all__ = ["MOST_WAIT", "RowWatch", "answer", "entity_tag", "preferred_wait"]

# the longest a request may wait: below the idle timeouts of the usual proxies (60 s), and
# what a stopping server may take to finish the requests it holds
MOST_WAIT = 20.0

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,6})\"?(?=$|[,;\s])", re.IGNORECASE)


def entity_tag(body: bytes) -> str:
    """A strong entity tag of the bytes sent."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def preferred_wait(request: Request) -> float:
    """The seconds ``Prefer: wait=<n>`` asks for (0 without it), at most :data:`MOST_WAIT`."""
    found = _WAIT.search(request.headers.get("prefer", ""))
    return min(float(found.group(1)), MOST_WAIT) if found else 0.0


def _none_match(request: Request, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, as RFC 9110 asks) or is
    ``*``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


class RowWatch:
    """Waits for rows of one table to change, for every waiting request of the process at
    once: while any waits, one query every ``interval`` seconds reads the waited rows'
    ``xmin`` and wakes those whose ``xmin`` moved (or whose row went). At most ``most``
    requests wait at a time; beyond that a request is answered at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: str,
        key: str,
        *,
        interval: float = 0.025,
        most: int = 1000,
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.most = most
        self._sql = (
            f"SELECT {key} AS key, xmin::text AS version FROM {table} WHERE {key} = ANY(:keys)"
        )
        self._version_sql = f"SELECT xmin::text AS version FROM {table} WHERE {key} = :key"
        self._waiting: dict[Hashable, list[tuple[str | None, asyncio.Future[None]]]] = {}
        self._count = 0
        self._ticking: asyncio.Task[None] | None = None

    async def version(self, key: Hashable, session: AsyncSession | None = None) -> str | None:
        """The row's version now (None when there is no row), in ``session`` when given."""
        if session is None:
            async with self.sessions() as own:
                return await self.version(key, own)
        found = await fetch_rows(session, self._version_sql, {"key": key})
        return found[0]["version"] if found else None

    async def changed(self, key: Hashable, since: str | None, seconds: float) -> bool:
        """True once the row's version is no longer ``since``; False when ``seconds``
        seconds passed first, or when too many requests wait already."""
        if self._count >= self.most or seconds <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (since, future)
        self._waiting.setdefault(key, []).append(entry)
        self._count += 1
        if self._ticking is None or self._ticking.done():
            self._ticking = asyncio.create_task(self._tick(), name="row watch")
        try:
            await asyncio.wait_for(future, seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._count -= 1
            entries = self._waiting.get(key, [])
            if entry in entries:
                entries.remove(entry)
            if not entries:
                self._waiting.pop(key, None)

    async def _tick(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.interval)
            keys = list(self._waiting)
            if not keys:
                return
            try:
                async with self.sessions() as session:
                    found = await fetch_rows(session, self._sql, {"keys": keys})
            except Exception as exc:  # the waiting requests answer at their deadline
                log.warning("could not read the watched rows: %s", exc)
                await asyncio.sleep(1.0)  # not a warning every tick while the database is away
                continue
            now = {row["key"]: row["version"] for row in found}
            for key in keys:
                for since, future in self._waiting.get(key, ()):
                    if now.get(key) != since and not future.done():
                        future.set_result(None)


async def answer(
    request: Request,
    read: Callable[[AsyncSession], Awaitable[bytes]],
    watch: RowWatch,
    key: Hashable,
) -> Response:
    """``read(session)``'s JSON with its entity tag; ``304`` when ``If-None-Match`` names
    that tag, after waiting as ``Prefer: wait`` asks for the row ``key`` of ``watch`` to
    change. The row's version and the read share one session of the watch's, one connection
    of its pool (a service's reads: no transaction around them)."""
    wait = preferred_wait(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    extra: dict[str, Any] = {}
    if wait:
        extra["Preference-Applied"] = f"wait={int(wait)}"
    while True:
        # the version before the read: a change after it is seen by the wait below
        async with watch.sessions() as session:
            since = await watch.version(key, session) if wait else None
            body = await read(session)
        tag = entity_tag(body)
        if not _none_match(request, tag):
            return Response(body, media_type="application/json", headers={**extra, "ETag": tag})
        left = deadline - loop.time()
        if left <= 0:
            return Response(status_code=304, headers={**extra, "ETag": tag})
        if not await watch.changed(key, since, left):
            deadline = loop.time()  # timed out, or refused: read once more and answer
