"""The relay hears its outbox's channel: rows another process commits (a CLI command,
another replica) are published without waiting for a poll. The writer announces them after
its commit (``shared.listen.announce``); no trigger notifies inside the writing transaction,
where PostgreSQL's global notify lock would serialise every writer's commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import shared.outbox as outbox_module
from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.db import make_engine, make_sessionmaker, migrate, transaction
from shared.events.accounts import AccountSuspended
from shared.outbox import EventContext, Outbox, Relay
from tests.support import eventually, outbox_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with outbox_schema(db_url, "accounts", pool_size=3) as engine:
        yield engine


async def test_rows_another_process_commits_wake_the_relay(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no poll could explain a delivery: only the channel can wake the relay
    monkeypatch.setattr(outbox_module, "LISTENING_POLL", 3600.0)
    sessions = make_sessionmaker(engine)
    received: list[Message] = []
    bus = InProcessBus()

    async def collect(batch: Sequence[Message]) -> None:
        received.extend(batch)

    outbox = Outbox("accounts")
    bus.subscribe("probe", [outbox.topic], collect)
    await bus.start()
    relay = Relay(outbox, sessions, bus, idle_interval=3600.0)
    relay.start()
    try:
        await eventually(_true(relay), lambda listening: listening)
        # another writer: its own Outbox object, so this process's in-memory wake-up is not
        # rung; only the notice announced after its commit reaches the relay
        other = Outbox("accounts")
        marks = [uuid.uuid4() for _ in range(3)]
        for mark in marks:
            async with transaction(sessions) as session:
                await other.add(
                    session,
                    [AccountSuspended(account_id=mark, reason_code="other")],
                    EventContext.new(),
                )
            await eventually(_sent(received), _containing(str(mark)))
        assert relay.alive()
    finally:
        await relay.stop()
        await bus.stop()
    assert not relay.listening  # the listening connection is closed with the relay


def _true(relay: Relay) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return relay.listening

    return probe


def _sent(received: list[Message]) -> Callable[[], Awaitable[set[str]]]:
    async def keys() -> set[str]:
        return {m.key for m in received}

    return keys


def _containing(key: str) -> Callable[[set[str]], bool]:
    return lambda got: key in got


class _GatedBus(InProcessBus):
    """A bus whose publishing waits until ``gate`` is set (a leader busy publishing)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def publish(self, messages: Sequence[Message]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().publish(messages)


async def test_rows_a_busy_leader_missed_are_announced_by_the_relay_that_lost(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two replicas' relays; no poll could explain a delivery, only notices
    monkeypatch.setattr(outbox_module, "LISTENING_POLL", 3600.0)
    sessions = make_sessionmaker(engine)
    received: list[Message] = []

    async def collect(batch: Sequence[Message]) -> None:
        received.extend(batch)

    outbox_a, outbox_b = Outbox("accounts"), Outbox("accounts")
    bus_a, bus_b = InProcessBus(), _GatedBus()
    for bus in (bus_a, bus_b):
        bus.subscribe("probe", [outbox_a.topic], collect)
        await bus.start()
    relay_a = Relay(outbox_a, sessions, bus_a, idle_interval=3600.0)
    relay_b = Relay(outbox_b, sessions, bus_b, idle_interval=3600.0)
    relay_b.start()
    try:
        await eventually(_true(relay_b), lambda listening: listening)
        first, second = uuid.uuid4(), uuid.uuid4()
        # B's relay takes its row and holds the relay lock while its publish waits
        async with transaction(sessions) as session:
            await outbox_b.add(
                session,
                [AccountSuspended(account_id=first, reason_code="other")],
                EventContext.new(),
            )
        await asyncio.wait_for(bus_b.entered.wait(), 10)
        # A believes its relay publishes (it led at its last try), so its commit announces
        # nothing
        outbox_a.publishing = True
        async with transaction(sessions) as session:
            await outbox_a.add(
                session,
                [AccountSuspended(account_id=second, reason_code="other")],
                EventContext.new(),
            )
        assert outbox_a.unannounced
        # A's relay tries, finds B publishing, and announces; B, once its batch is out,
        # reads again
        relay_a.start()
        await eventually(_unannounced(outbox_a), lambda pending: not pending)
        assert not outbox_a.publishing
        bus_b.gate.set()
        await eventually(_sent(received), _containing(str(second)))
        assert str(first) in {m.key for m in received}
    finally:
        bus_b.gate.set()
        await relay_a.stop()
        await relay_b.stop()
        await bus_a.stop()
        await bus_b.stop()


def _unannounced(outbox: Outbox) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return outbox.unannounced

    return probe


async def test_no_outbox_notifies_inside_the_writing_transaction(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        for service in ("accounts", "catalogue", "ledger", "payments", "portal"):
            await migrate(engine, service)
        async with engine.connect() as conn:
            triggers = (
                await conn.execute(
                    text(
                        "SELECT tgrelid::regclass::text FROM pg_trigger "
                        "WHERE tgname = 'outbox_notify' OR tgfoid::regproc::text "
                        "LIKE '%outbox_notify%'"
                    )
                )
            ).all()
            outboxes = (
                await conn.execute(
                    text("SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert outboxes == 5
    assert triggers == []
