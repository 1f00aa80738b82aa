"""A unit of work cancelled at any point (a relay or a consumer stopped, a timeout, a client
gone) leaves nothing behind on its connection: the next unit of work on that connection
commits for real.

The danger is the driver's, and silent. asyncpg records a transaction as the connection's
own before its ``BEGIN`` is answered; cancelled while it waits, the record stays, and the
server is left inside the transaction that ``BEGIN`` opened. SQLAlchemy, whose transaction
never started, hands the connection back to its pool as it is. The next unit of work on it
then runs as a savepoint inside that leftover transaction, and its commit only releases the
savepoint: the caller is told its writes are committed, no other connection sees them, and
they are lost when the connection goes. The pool now refuses such a connection at checkout
(``shared.db.make_engine``) and opens a clean one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from shared.db import driver, make_engine, make_sessionmaker, pooled_driver, transaction

pytestmark = pytest.mark.postgres

STEPS = 40
"""Loop turns a unit of work is given before it is cancelled, from 0 up: enough to reach
its ``BEGIN``, its statement, its ``COMMIT`` and the connection's return."""


async def _cancelled_after(steps: int, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work``, cancelled after ``steps`` turns of the loop (or done before)."""
    task = asyncio.create_task(work())
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _seen_elsewhere(dsn: str, n: int) -> bool:
    """Whether a connection of its own, outside the pool, sees row ``n`` committed."""
    other = await asyncpg.connect(dsn)
    try:
        return bool(await other.fetchval("SELECT count(*) FROM t WHERE n = $1", n))
    finally:
        await other.close()


@pytest.mark.parametrize("path", ["session", "driver"])
async def test_a_unit_of_work_after_a_cancelled_one_commits_for_real(
    db_url: str, path: str
) -> None:
    """The unit of work cancelled runs its statement through the session (SQLAlchemy begins
    the transaction) or on the driver (``shared.db.driver`` begins it, as the hot paths do)."""
    engine = make_engine(db_url, pool_size=1, max_overflow=0)  # one connection, reused
    sessions = make_sessionmaker(engine)
    dsn = db_url.replace("postgresql+asyncpg", "postgresql")
    try:
        async with transaction(sessions) as s:
            await s.execute(text("CREATE TABLE t (n int)"))

        async def interrupted() -> None:
            async with transaction(sessions) as s:
                if path == "driver":
                    await (await driver(s)).fetchval("SELECT 1")
                else:
                    await s.execute(text("SELECT 1"))

        lost = []
        for steps in range(STEPS):
            await _cancelled_after(steps, interrupted)
            try:
                async with transaction(sessions) as s:
                    await s.execute(text("INSERT INTO t VALUES (:n)"), {"n": steps})
            except Exception as exc:
                pytest.fail(f"after a cancel at turn {steps}, the next unit of work failed: {exc}")
            if not await _seen_elsewhere(dsn, steps):
                lost.append(steps)
        assert lost == [], f"committed, yet unseen by others, after a cancel at turns {lost}"
    finally:
        await engine.dispose()


async def test_a_connection_left_in_a_transaction_is_not_handed_out_again(db_url: str) -> None:
    """Whatever left it so (a ``BEGIN`` cancelled before its answer, as above, or a
    transaction begun on the driver and never ended), a connection that is in a transaction
    when the pool hands it out is closed instead (its transaction rolled back), counted on
    ``/metrics``, and another is opened."""
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)

    def discarded() -> float:
        return REGISTRY.get_sample_value("ila_db_connections_discarded_total") or 0.0

    before = discarded()
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            first = raw.get_server_pid()
            begun = asyncio.create_task(raw.transaction().start())
            await asyncio.sleep(0)  # BEGIN is sent; its answer is not read yet
            begun.cancel()
            with pytest.raises(asyncio.CancelledError):
                await begun
        async with transaction(sessions) as s:
            pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
        assert pid != first
        assert discarded() == before + 1

        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            first = raw.get_server_pid()
            await raw.execute("BEGIN")
        # ``pooled_driver`` ends what its caller left open; a bare connection does not
        async with pooled_driver(engine) as raw:
            assert not raw.is_in_transaction()
            assert raw.get_server_pid() != first
        assert discarded() == before + 2
    finally:
        await engine.dispose()
