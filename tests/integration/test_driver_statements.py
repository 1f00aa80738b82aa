"""Statements run on the session's driver connection (``shared.db.fetch_rows``, ``execute``)
take part in the session's transaction and fail as ``session.execute`` fails: with
SQLAlchemy's ``DBAPIError``, which the request and consumer paths tell apart (a value out of
range is the caller's 422 and is never retried; a lock timeout is retried)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import (
    execute,
    fetch_rows,
    is_transient,
    make_engine,
    make_sessionmaker,
    pooled_driver,
)
from shared.problems import _is_data_exception

pytestmark = pytest.mark.postgres


async def test_driver_statements_share_the_transaction_and_its_errors(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as s:
            await s.execute(text("CREATE TABLE t (k int PRIMARY KEY, v jsonb)"))
            await s.commit()

        async with sessions() as s:  # rolled back: nothing the driver wrote stays
            await execute(s, "INSERT INTO t VALUES (:k, CAST(:v AS jsonb))", {"k": 1, "v": "{}"})
            params = [{"k": k, "v": json.dumps({"n": k})} for k in (2, 3)]
            await execute(s, "INSERT INTO t VALUES (:k, CAST(:v AS jsonb))", params)
            rows = await fetch_rows(
                s, "SELECT k, v FROM t WHERE k = ANY(:ks) ORDER BY k", {"ks": [1, 3]}
            )
            assert [(r["k"], r["v"]) for r in rows] == [(1, {}), (3, {"n": 3})]
            await s.rollback()
        async with sessions() as s:
            assert await fetch_rows(s, "SELECT k FROM t", {}) == []

        async with sessions() as s:
            with pytest.raises(DBAPIError) as out_of_range:
                await fetch_rows(s, "SELECT k FROM t WHERE k = :k", {"k": 2**40})
            assert _is_data_exception(out_of_range.value)
            assert not is_transient(out_of_range.value)

        async with sessions() as holder, sessions() as waiter:
            await execute(holder, "INSERT INTO t VALUES (:k, NULL)", {"k": 9})
            await execute(waiter, "SET LOCAL lock_timeout = '50ms'", {})
            with pytest.raises(DBAPIError) as timed_out:
                await asyncio.wait_for(
                    execute(waiter, "INSERT INTO t VALUES (:k, NULL)", {"k": 9}), 10
                )
            assert is_transient(timed_out.value)
            assert not _is_data_exception(timed_out.value)
    finally:
        await engine.dispose()


async def test_one_session_s_next_transactions_run_on_the_driver_in_their_own(
    db_url: str,
) -> None:
    """A session's next transaction (after a commit, a rollback, a savepoint rolled back),
    begun by the driver or by SQLAlchemy, runs its driver statements inside itself, never
    on their own nor on the connection of the transaction before."""
    engine = make_engine(db_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as s:
            await s.execute(text("CREATE TABLE u (k int PRIMARY KEY)"))
            await s.commit()
        async with engine.connect() as one, engine.connect() as two:  # the pool holds two
            await one.execute(text("SELECT 1"))
            await two.execute(text("SELECT 1"))
        async with sessions() as s:
            await execute(s, "INSERT INTO u VALUES (:k)", {"k": 1})
            await s.commit()
            # a new transaction, begun by SQLAlchemy on the pool's other connection: the
            # driver statements go there, and are rolled back with it
            await s.execute(text("SELECT 1"))
            await execute(s, "INSERT INTO u VALUES (:k)", {"k": 2})
            await s.rollback()
            await execute(s, "INSERT INTO u VALUES (:k)", {"k": 3})
            async with s.begin_nested() as savepoint:
                await execute(s, "INSERT INTO u VALUES (:k)", {"k": 4})
                await savepoint.rollback()
            await execute(s, "INSERT INTO u VALUES (:k)", {"k": 5})
            await s.rollback()
            await execute(s, "INSERT INTO u VALUES (:k)", {"k": 6})
            await s.commit()
        async with sessions() as s:
            assert [r["k"] for r in await fetch_rows(s, "SELECT k FROM u ORDER BY k", {})] == [1, 6]
    finally:
        await engine.dispose()


async def test_a_pooled_driver_goes_back_outside_any_transaction_or_not_at_all(
    db_url: str,
) -> None:
    """``pooled_driver`` (the relay's connection): a connection is back in the pool outside
    any transaction, or not back at all. A transaction its caller left open is rolled back;
    a caller that fails, is cancelled or loses its server has its connection discarded,
    even when a statement it sent is still to be answered (a cancelled ``BEGIN`` would
    otherwise leave the next user of the pool in a transaction it did not start)."""
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    try:
        async with pooled_driver(engine) as raw:
            await raw.execute("CREATE TABLE w (k int PRIMARY KEY)")
        async with pooled_driver(engine) as again:
            assert again is raw  # the pool's one connection, kept
            await again.execute("BEGIN; INSERT INTO w VALUES (1)")  # and left open
        async with pooled_driver(engine) as again:
            assert again is raw and not again.is_in_transaction()
            assert await again.fetch("SELECT k FROM w") == []

        with pytest.raises(RuntimeError, match="the caller fails"):
            async with pooled_driver(engine) as failed:
                await failed.execute("BEGIN; INSERT INTO w VALUES (2)")
                raise RuntimeError("the caller fails")
        assert failed.is_closed()

        used: list[Any] = []

        async def begins() -> None:
            async with pooled_driver(engine) as raw:
                used.append(raw)
                await raw.execute("BEGIN; INSERT INTO w VALUES (3); SELECT pg_sleep(0.5)")

        task = asyncio.create_task(begins())
        await asyncio.sleep(0.1)
        task.cancel()  # before the server answered
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await asyncio.sleep(1)  # the answer, had the connection been kept
        assert used[0].is_closed()
        async with sessions() as s:  # the next user of the pool starts its own transaction
            assert (await s.execute(text("SELECT count(*) FROM w"))).scalar() == 0
            await s.commit()

        with pytest.raises(asyncpg.PostgresError):  # the server ends the connection
            async with pooled_driver(engine) as gone:
                await gone.execute("BEGIN; INSERT INTO w VALUES (4)")
                await gone.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert gone.is_closed()
        async with pooled_driver(engine) as fresh:
            assert fresh is not gone and not fresh.is_in_transaction()
            assert await fresh.fetchval("SELECT count(*) FROM w") == 0
    finally:
        await engine.dispose()
