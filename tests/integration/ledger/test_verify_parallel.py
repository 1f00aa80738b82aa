"""Verify spread over worker processes reports what one pass in one process reports, on a
sound store and on a tampered one, with pages so small that every stream is cut across two
of them (each stream is still checked whole, by one worker)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ledger.audit import VerifyReport, pool, verify
from shared.db import make_engine
from tests.integration.support import funders
from tests.integration.support.ledger import THIS_YEAR, Api

pytestmark = pytest.mark.postgres


@pytest.fixture
async def superuser(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url, pool_size=2)
    yield engine
    await engine.dispose()


async def both(api: Api, monkeypatch: pytest.MonkeyPatch) -> tuple[VerifyReport, VerifyReport]:
    """The report of one pass here, and that of the workers (checked the same as the one
    of the workers that took over from this process once ready, with a small store: here
    all along)."""
    key = api.settings.ledger_checkpoint_key.encode()
    async with api.rt.sessions() as session:
        alone = await verify(session, key, workers=0)
    async with api.rt.sessions() as session:
        mixed = await verify(session, key, workers=2)
    same(alone, mixed)
    start = pool.executor

    @asynccontextmanager
    async def started(workers: int) -> AsyncIterator[pool.Workers]:
        async with start(workers) as ready:
            await ready.starting  # every batch to the workers
            assert ready.ready
            yield ready

    with monkeypatch.context() as patch:
        patch.setattr(pool, "executor", started)
        async with api.rt.sessions() as session:
            spread = await verify(session, key, workers=2)
    return alone, spread


def same(alone: VerifyReport, spread: VerifyReport) -> None:
    assert (spread.streams, spread.events, spread.checkpoints) == (
        alone.streams,
        alone.events,
        alone.checkpoints,
    )
    assert spread.funders == alone.funders
    assert spread.mismatches == alone.mismatches


async def build(api: Api) -> dict[str, Any]:
    accounts = [await api.account() for _ in range(5)]
    for i, account in enumerate(accounts):
        for amount in range(1, i + 2):  # streams of 2 to 6 events
            assert (await api.grant(account, 100 * amount)).status_code == 201
    employer = await funders.funder(api, "employer")
    await funders.budget(api, employer, THIS_YEAR, 10_000)
    for account in accounts[:3]:
        assert (await funders.grant(api, employer, account, 1_000)).status_code == 201
    return {"accounts": accounts, "employer": employer}


async def test_workers_report_what_one_pass_reports(
    api: Api, superuser: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build(api)
    accounts = world["accounts"]
    # (the package's ``verify`` is the function: the module is taken by its name)
    monkeypatch.setattr(sys.modules["services.ledger.audit.verify"], "PAGE", 3)
    alone, spread = await both(api, monkeypatch)
    assert alone.ok, alone.mismatches
    same(alone, spread)
    assert spread.streams == len(accounts) + 1  # the wallets and the budget
    assert {f["funder_id"]: f["lots_granted"] for f in spread.funders}[world["employer"]] == 3_000

    async with superuser.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        tampered = await conn.scalar(
            text(
                "UPDATE ledger.events SET data = jsonb_set(data, '{amount}', '99999') "
                "WHERE stream_id = :a AND version = 3 RETURNING position"
            ),
            {"a": accounts[4]},
        )
        await conn.execute(
            text("UPDATE ledger.wallets SET available = available + 1 WHERE account_id = :a"),
            {"a": accounts[3]},
        )
        await conn.execute(
            text("DELETE FROM ledger.lots WHERE account_id = :a"), {"a": accounts[1]}
        )
        gone = await conn.scalar(
            text(
                "DELETE FROM ledger.events WHERE stream_id = :a AND version = 2 RETURNING position"
            ),
            {"a": accounts[2]},
        )
        await conn.execute(
            text(
                "INSERT INTO ledger.wallets (account_id, status, version, head_hash, available, "
                "reserved, granted_total, spent_total, expired_total, updated_at) "
                "SELECT :o, status, version, head_hash, available, reserved, granted_total, "
                "spent_total, expired_total, updated_at FROM ledger.wallets WHERE account_id = :a"
            ),
            {"o": uuid.uuid4(), "a": accounts[0]},
        )
    alone, spread = await both(api, monkeypatch)
    same(alone, spread)
    problems = {(m["stream"], m["problem"]) for m in spread.mismatches}
    assert (str(accounts[4]), "hash does not match the event's canonical bytes") in problems
    assert any(
        m["stream"] == str(accounts[4]) and m["position"] == tampered for m in spread.mismatches
    )
    assert any(s == str(accounts[3]) and p.startswith("wallet.available") for s, p in problems)
    assert any(s == str(accounts[1]) and "missing from the projection" in p for s, p in problems)
    assert (str(accounts[2]), "version 3 where 2 expected") in problems
    assert gone is not None
    assert any(p == "wallet projection without any event" for _, p in problems)
    assert spread.events == alone.events
