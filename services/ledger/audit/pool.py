"""The processes verify checks batches of streams in.

They come from a fork server that has imported the checking code once (the first verify of
a process starts it, and checks the first batches itself meanwhile; later ones fork from it
at once), never from a fork of the caller: a server's other threads may hold locks a forked
copy would wait on forever.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

MODULE = "services.ledger.audit.streams"
SMALL = 5000
"""Below this many streams, verify checks them in its own process: starting workers would
cost more than they save."""


def default_workers(streams: int) -> int:
    """One process per core (up to 8), none for a small store or a single core."""
    cores = min(os.cpu_count() or 1, 8)
    return 0 if streams < SMALL or cores < 2 else cores


def _ready() -> None:
    """Run once in each worker: every event catalogue registered, as in the caller."""
    from shared.events import load_all

    load_all()


def _noop() -> None:
    return None


class Workers:
    """The worker processes, ready once each has answered (until then, and for good if
    they could not start, the caller checks its batches itself)."""

    def __init__(self, pool: ProcessPoolExecutor, count: int, starting: asyncio.Task[None]) -> None:
        self.pool = pool
        self.count = count
        self.starting = starting

    @property
    def ready(self) -> bool:
        done = self.starting.done() and not self.starting.cancelled()
        return done and self.starting.exception() is None


@asynccontextmanager
async def executor(workers: int) -> AsyncIterator[Workers]:
    """``workers`` processes, started in a thread (the event loop keeps reading and
    checking meanwhile), shut down on leaving, with any batch not yet started cancelled."""
    context = multiprocessing.get_context("forkserver")
    # the caller's main module once in the server (it must guard its own start, as
    # multiprocessing asks), not again in each worker
    context.set_forkserver_preload(["__main__", MODULE])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ready)

    def start() -> None:
        for future in [pool.submit(_noop) for _ in range(workers)]:
            future.result()

    starting = asyncio.create_task(asyncio.to_thread(start))
    try:
        yield Workers(pool, workers, starting)
    finally:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        failed = (await asyncio.gather(starting, return_exceptions=True))[0]
        if isinstance(failed, Exception):
            log.warning("verify checked every stream itself: no worker started (%s)", failed)
