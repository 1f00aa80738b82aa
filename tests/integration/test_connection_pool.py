"""Each service's connections to PostgreSQL: a fixed pool that requests wait for, instead
of connections opened for one request and closed after it; a request that gets none in
time answers 503 and changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ila.registry import all_definitions
from shared.kernel_ddl import outbox_channel
from tests.integration.support.accounts import BODY, new_national_id
from tests.support import bearer, eventually, running_app, settings_for

pytestmark = pytest.mark.postgres


def watched(engine: AsyncEngine) -> tuple[list[object], list[object]]:
    """The connections ``engine``'s pool opens, and those it closes, from now on."""
    pool = engine.sync_engine.pool
    opened: list[object] = []
    closed: list[object] = []
    event.listen(pool, "connect", lambda conn, _record: opened.append(conn))
    event.listen(pool, "close", lambda conn, _record: closed.append(conn))
    return opened, closed


async def listeners(engine: AsyncEngine, channel: str) -> set[int]:
    """The server processes whose session on this database listens on ``channel`` (its last
    statement)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE query = :q AND datname = current_database()"
            ),
            {"q": f'LISTEN "{channel}"'},
        )
        return {r[0] for r in rows}


async def test_requests_beyond_the_pool_wait_for_its_connections(db_url: str) -> None:
    settings = settings_for(db_url, db_pool_size=2)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        agency = bearer(settings, "agency", agency_id="pes-fr")
        engine = app.state.runtimes["accounts"].engine

        created = await asyncio.gather(
            *(
                c.post(
                    "/v1/accounts", json={**BODY, "national_id": new_national_id()}, headers=agency
                )
                for _ in range(4)
            )
        )
        ids = [r.json()["account_id"] for r in created]

        async def burst(n: int) -> None:
            answers = await asyncio.gather(
                *(c.get(f"/v1/accounts/{ids[i % len(ids)]}", headers=agency) for i in range(n))
            )
            assert [r.status_code for r in answers] == [200] * n, answers[0].text

        # every relay listening: each took its connection from the pool and detached it,
        # and the pool's place is filled again on its next checkout
        for name in app.state.runtimes:
            await eventually(lambda n=name: listeners(engine, outbox_channel(n)))
        await burst(4)  # the pool filled
        opened, closed = watched(engine)
        await burst(30)
        # thirty reads at once over two connections: the others waited for one to come back
        # (a pool with overflow opened one for each read beyond two, and closed it after)
        assert closed == []
        assert len(opened) <= 2


async def test_a_request_that_gets_no_connection_in_time_answers_503(db_url: str) -> None:
    settings = settings_for(db_url, db_pool_size=1, db_pool_timeout=0.3)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        agency = bearer(settings, "agency", agency_id="pes-fr")
        engine = app.state.runtimes["accounts"].engine
        body = {**BODY, "national_id": new_national_id()}
        async with engine.connect() as held:  # the pool's only connection, kept busy
            before = (await held.execute(text("SELECT count(*) FROM accounts.accounts"))).scalar()
            r = await c.post("/v1/accounts", json=body, headers=agency)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["retry-after"] == "1"
            assert r.json()["type"].endswith("/unavailable")
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT count(*) FROM accounts.accounts"))).scalar()
        assert after == before
        # with the connection back, the same request goes through
        assert (await c.post("/v1/accounts", json=body, headers=agency)).status_code == 201


async def test_a_relay_listens_on_one_connection_outside_the_pool(db_url: str) -> None:
    settings = settings_for(db_url, db_pool_size=2)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        agency = bearer(settings, "agency", agency_id="pes-fr")
        rt = app.state.runtimes["accounts"]
        channel = outbox_channel("accounts")
        first = await eventually(lambda: listeners(rt.engine, channel))
        assert len(first) == 1
        # the services share the engine: every relay's listening connection taken (and
        # detached) before the count starts, not one of them in the middle of it
        for name in app.state.runtimes:
            await eventually(lambda n=name: listeners(rt.engine, outbox_channel(n)))
        opened, closed = watched(rt.engine)
        for _ in range(5):  # commits the relay hears, publishes and waits for again
            r = await c.post(
                "/v1/accounts", json={**BODY, "national_id": new_national_id()}, headers=agency
            )
            assert r.status_code == 201, r.text
            await eventually(rt.relay.backlog, lambda n: n == 0)
        # the same listening connection all along, and the pool's two others kept
        assert await listeners(rt.engine, channel) == first
        assert closed == []
        assert len(opened) <= 2


def gauge(metrics: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels) in ``/metrics``' text."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in /metrics")


async def test_metrics_show_each_pool_in_use_and_idle(db_url: str) -> None:
    settings = settings_for(db_url, db_pool_size=3)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        engine = app.state.runtimes["payments"].engine
        size = 'ila_db_pool_size{service="payments"}'
        in_use = 'ila_db_pool_connections{service="payments",state="in_use"}'
        idle = 'ila_db_pool_connections{service="payments",state="idle"}'
        before = (await c.get("/metrics")).text
        assert gauge(before, size) == 3
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            during = (await c.get("/metrics")).text
            assert gauge(during, in_use) >= 1
            assert gauge(during, in_use) + gauge(during, idle) <= 3

        async def using() -> float:
            return gauge((await c.get("/metrics")).text, in_use)

        # given back (the relays and consumers take one now and then, and give it back)
        await eventually(using, lambda n: n == 0)
