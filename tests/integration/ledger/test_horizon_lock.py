"""The auditors' horizon waits for in-flight appenders without a lock of its own and on the
reader's one connection: appends that start meanwhile go through at once, and a reader
cancelled at any moment leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from services.ledger.main import definition
from services.ledger.store import audit as audit_reads
from services.ledger.store.events import APPEND_LOCK
from shared.db import make_engine, make_sessionmaker
from shared.service import ServiceRuntime
from tests.support import running_app, settings_for

pytestmark = pytest.mark.postgres
LOCK = {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]}


@pytest.fixture
async def rt(db_url: str) -> AsyncIterator[ServiceRuntime]:
    async with running_app([definition()], settings_for(db_url), run_jobs=False) as (app, _):
        yield app.state.runtimes["ledger"]


async def exclusive_holders(rt: ServiceRuntime) -> int:
    async with rt.sessions() as s:
        n = await s.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
                "AND objid = :o AND mode = 'ExclusiveLock'"
            ),
            LOCK,
        )
    return int(n or 0)


@pytest.mark.parametrize("cancel_after", [0.0, 0.02, 0.1, 0.3])
async def test_a_cancelled_horizon_leaves_no_lock_behind(
    rt: ServiceRuntime, cancel_after: float
) -> None:
    # an appender in flight: it holds the append lock shared until it commits
    appender = rt.sessions()
    await appender.execute(text("SELECT pg_advisory_xact_lock_shared(:c, :o)"), LOCK)

    async def read() -> int:
        async with rt.sessions() as s:
            return await audit_reads.horizon(s)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)  # the reader now waits for the appender
    await appender.commit()  # the appender finishes: the reader may take the lock
    await appender.close()
    await asyncio.sleep(cancel_after)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await asyncio.sleep(0.05)
    assert await exclusive_holders(rt) == 0
    # and the next append takes its shared lock at once
    async with rt.sessions() as s, s.begin():
        await s.execute(text("SET LOCAL lock_timeout = '2s'"))
        await s.execute(text("SELECT pg_advisory_xact_lock_shared(:c, :o)"), LOCK)


async def test_the_horizon_waits_for_the_appenders_in_flight_and_holds_back_no_new_one(
    rt: ServiceRuntime, db_url: str
) -> None:
    async def drawn(s: object) -> int:
        return int(await s.scalar(text("SELECT nextval('ledger.events_position_seq')")))  # type: ignore[attr-defined]

    # an appender in flight: the append lock shared, then a position drawn
    first = rt.sessions()
    await first.execute(text("SELECT pg_advisory_xact_lock_shared(:c, :o)"), LOCK)
    position = await drawn(first)
    # the reader on a pool of one connection, no overflow: a second one would never come
    engine = make_engine(db_url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        async with make_sessionmaker(engine)() as s:
            reader = asyncio.create_task(audit_reads.horizon(s))
            await asyncio.sleep(0.1)
            assert not reader.done()  # it waits for the first appender
            # an appender that starts now takes the lock at once and draws a later position
            async with rt.sessions() as second, second.begin():
                await second.execute(text("SET LOCAL lock_timeout = '500ms'"))
                await second.execute(text("SELECT pg_advisory_xact_lock_shared(:c, :o)"), LOCK)
                assert await drawn(second) > position
                await first.commit()
                # the first one's commit settles the horizon, the second still in flight
                assert await asyncio.wait_for(reader, 2) == position
    finally:
        await first.close()
        await engine.dispose()
