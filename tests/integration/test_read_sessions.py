"""Sessions for reads alone (``shared.db.make_read_sessionmaker``, a service's ``rt.reads``):
each statement runs by itself, without the ``BEGIN`` and ``ROLLBACK`` round trips of a
transaction; the pool's connections still open transactions for every other session."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ila.registry import all_definitions
from shared.db import make_engine, make_read_sessionmaker, make_sessionmaker, transaction
from tests.support import running_app, settings_for

pytestmark = pytest.mark.postgres


async def two_starts(session: AsyncSession) -> tuple[datetime, datetime]:
    """When the transaction of each of two statements, 20 ms apart, started."""
    first = (await session.execute(text("SELECT now()"))).scalar_one()
    await asyncio.sleep(0.02)
    second = (await session.execute(text("SELECT now()"))).scalar_one()
    return first, second


async def runs_alone(reads: async_sessionmaker[AsyncSession]) -> bool:
    async with reads() as session:
        first, second = await two_starts(session)
    return second > first


async def test_a_read_session_runs_each_statement_in_its_own_transaction(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        assert await runs_alone(make_read_sessionmaker(engine))

        # a session of the same pool's one connection still runs in one transaction
        async with transaction(make_sessionmaker(engine)) as session:
            first, second = await two_starts(session)
        assert first == second
    finally:
        await engine.dispose()


async def test_the_connection_a_read_used_goes_back_transactional(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    reads = make_read_sessionmaker(engine)
    try:
        async with transaction(sessions) as session:
            await session.execute(text("CREATE TABLE t (id uuid PRIMARY KEY)"))
        assert await runs_alone(reads)

        # after the read, the one connection undoes a failed unit of work as a whole
        row = uuid.uuid4()
        with pytest.raises(RuntimeError):
            async with transaction(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (:id)"), {"id": row})
                raise RuntimeError("the unit of work fails after its write")
        async with reads() as session:
            count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 0
        assert await runs_alone(reads)
    finally:
        await engine.dispose()


async def test_every_service_reads_without_a_transaction(db_url: str) -> None:
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, _):
        for name, rt in app.state.runtimes.items():
            assert await runs_alone(rt.reads), name
            async with rt.uow() as session:
                first, second = await two_starts(session)
            assert first == second, name
