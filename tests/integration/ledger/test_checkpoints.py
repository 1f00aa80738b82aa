"""Signed stream-head checkpoints: a store whose last events were deleted (and whose
projection was rewritten to match) is found by verify without Kafka, and so is a checkpoint
that the ledger's key did not sign."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.ledger.audit import checkpoints as signed
from services.ledger.audit import verify
from services.ledger.store import checkpoints as checkpoint_store
from shared.db import make_engine, make_sessionmaker, migrate, transaction
from tests.integration.support.ledger import Env, open_wallet

pytestmark = pytest.mark.postgres
KEY = b"test-checkpoint-key-0123456789abcdef"


async def take(env: Env) -> checkpoint_store.Checkpoint:
    async with transaction(env.sessions) as s:
        cp = await signed.take(s, KEY)
    assert cp is not None
    return cp


async def test_a_checkpoint_counts_the_store_and_verifies(env: Env) -> None:
    for _ in range(3):
        await open_wallet(env, 5_000)
    cp = await take(env)
    async with env.sessions() as s:
        events = await s.scalar(text("SELECT count(*) FROM ledger.events"))
        last = await s.scalar(text("SELECT max(position) FROM ledger.events"))
        report = await verify(s, KEY)
    assert cp.event_count == events == 6 and cp.head_position == last
    assert report.ok and report.checkpoints == 1, report.mismatches
    async with transaction(env.sessions) as s:
        assert await signed.take(s, KEY) is None  # nothing new: no second checkpoint
    await open_wallet(env, 1_000)
    second = await take(env)
    assert second.event_count == 8
    async with env.sessions() as s:
        assert (await verify(s, KEY)).ok


async def test_a_store_cut_short_is_found_by_its_checkpoint(env: Env) -> None:
    await open_wallet(env, 5_000)
    victim = await open_wallet(env, 7_000)
    cp = await take(env)
    # a superuser deletes the victim's last event behind the trigger's back and rewrites its
    # wallet to match, so that the chain and the projection agree with what is left
    async with env.engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text(
                "DELETE FROM ledger.events WHERE stream_id = :a AND version = "
                "(SELECT max(version) FROM ledger.events WHERE stream_id = :a)"
            ),
            {"a": victim},
        )
        await conn.execute(
            text(
                "UPDATE ledger.wallets w SET available = 0, granted_total = 0, "
                "version = w.version - 1, head_hash = e.hash FROM ledger.events e "
                "WHERE w.account_id = :a AND e.stream_id = :a AND e.version = w.version - 1"
            ),
            {"a": victim},
        )
        await conn.execute(text("DELETE FROM ledger.lots WHERE account_id = :a"), {"a": victim})
    async with env.sessions() as s:
        report = await verify(s, KEY)
    problems = [m["problem"] for m in report.mismatches]
    # the streams alone look sound: only the checkpoint tells
    assert all(m["stream"] is None for m in report.mismatches), report.mismatches
    assert any(f"holds {cp.event_count - 1} events" in p for p in problems), problems
    assert any("head event" in p and "missing" in p for p in problems), problems


async def test_a_forged_checkpoint_is_reported(env: Env) -> None:
    await open_wallet(env, 5_000)
    real = await take(env)
    forged = checkpoint_store.Checkpoint(
        position=real.position + 10,
        head_position=real.head_position,
        head_hash=real.head_hash,
        event_count=real.event_count,
        key_id=signed.key_id(KEY),
        signature="",
        at=datetime.now(UTC),
    )
    wrong = b"not-the-ledger-key"
    forged = checkpoint_store.Checkpoint(
        **{**forged.__dict__, "signature": signed.sign(wrong, forged)}
    )
    async with transaction(env.sessions) as s:
        await checkpoint_store.insert(s, forged)
        report = await verify(s, KEY)
    assert [m["problem"] for m in report.mismatches] == [
        "checkpoint signature does not verify (forged or signed with another key)"
    ]
    assert report.checkpoints == 2


async def test_the_ledger_checkpoints_every_n_events_in_the_background(env: Env) -> None:
    task = asyncio.create_task(
        signed.checkpoint_forever(env.sessions, KEY, every_events=4, every_seconds=3600, poll=0.05)
    )
    try:
        for _ in range(3):  # 6 events
            await open_wallet(env, 100)

        async def count() -> int:
            async with env.sessions() as s:
                return len(await checkpoint_store.every(s))

        for _ in range(100):
            if await count() >= 1:
                break
            await asyncio.sleep(0.05)
        assert await count() >= 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    async with env.sessions() as s:
        assert (await verify(s, KEY)).ok


async def test_the_app_role_may_add_checkpoints_but_never_change_them(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=2)
    try:
        await migrate(engine, "ledger")
        sessions = make_sessionmaker(engine)
        async with sessions() as s:
            grants = await s.scalar(
                text(
                    "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM "
                    "information_schema.role_table_grants WHERE grantee = 'ila_ledger_app' "
                    "AND table_schema = 'ledger' AND table_name = 'checkpoints'"
                )
            )
        assert grants == "INSERT,SELECT"
    finally:
        await engine.dispose()
