"""The auditors' horizon waits for in-flight appenders under a lock that cannot outlive
it: cancel the reader at any moment and appends still go through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from services.ledger.main import definition
from services.ledger.store import audit as audit_reads
from services.ledger.store.events import APPEND_LOCK
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
