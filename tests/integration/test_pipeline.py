"""The event pipeline against the real PostgreSQL and the real Kafka broker.

A probe consumer (its own schema with the kernel inbox, and an ``effects`` table) stands in
for a downstream service, so that each guarantee of the shared machinery is tried alone:
redelivery after a relay crash, per-aggregate order, restart mid-stream, poison messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.bus import Message
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events import Envelope
from shared.events.accounts import AccountOpened, AccountTransferred, NeedProfile
from shared.inbox import EventConsumer
from shared.kernel_ddl import dead_letters_ddl, kernel_tables, outbox_bulk_ddl, outbox_parking_ddl
from shared.outbox import EventContext, Outbox, Relay, RelayCrash
from tests.support import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url, pool_size=5)
    async with engine.begin() as conn:
        for schema in ("accounts", "probe"):
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            for ddl in [
                *kernel_tables(schema),
                *dead_letters_ddl(schema),
                *outbox_parking_ddl(schema),
                *outbox_bulk_ddl(schema),
            ]:
                await conn.execute(text(ddl))
        await conn.execute(
            text("CREATE TABLE probe.effects (n bigserial, account_id uuid, reason text)")
        )
    yield engine
    await engine.dispose()


@pytest.fixture
async def topics(kafka_bootstrap: str) -> dict[str, str]:
    """Fresh topic names per test so that tests never see each other's messages."""
    suffix = uuid.uuid4().hex[:8]
    names = {"accounts": f"t{suffix}.accounts", "dlt": f"t{suffix}.dlt"}
    await ensure_topics(kafka_bootstrap, [TopicSpec(n, 3) for n in names.values()])
    return names


def marked(account_id: uuid.UUID, mark: str) -> AccountTransferred:
    """An event of the account carrying ``mark``, a free string the probe records."""
    return AccountTransferred(account_id=account_id, from_agency_id="probe", to_agency_id=mark)


def opened(account_id: uuid.UUID) -> AccountOpened:
    return AccountOpened(
        account_id=account_id,
        agency_id="a1",
        profile=NeedProfile(qualification_level=3, employment_status="employed"),
        opened_at=datetime.now(UTC),
    )


class Probe:
    """A downstream consumer that writes one effect row per handled event."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: KafkaBus,
        dlt: str,
        fail_on: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.sessions = make_sessionmaker(engine)
        self.consumer = EventConsumer(
            "probe", self.sessions, bus, max_attempts=2, retry_delay=0, dead_letter_topic=dlt
        )
        self.fail_on = fail_on
        self.delay = delay

        @self.consumer.on(AccountTransferred)
        async def on_marked(session: AsyncSession, env: Envelope, ev: AccountTransferred) -> None:
            await session.execute(
                text("INSERT INTO probe.effects (account_id, reason) VALUES (:a, :r)"),
                {"a": ev.account_id, "r": ev.to_agency_id},
            )
            if self.delay:
                await asyncio.sleep(self.delay)  # a slow consumer, so a stop lands mid-stream
            if self.fail_on and ev.to_agency_id == self.fail_on:
                raise ValueError("poison")

    async def effects(self) -> list[tuple[str, str]]:
        async with self.sessions() as s:
            rows = await s.execute(text("SELECT account_id, reason FROM probe.effects ORDER BY n"))
            return [(str(a), r) for a, r in rows]


async def stage(engine: AsyncEngine, topics: dict[str, str], events: list[object]) -> None:
    outbox = Outbox("accounts", topics["accounts"])
    async with transaction(make_sessionmaker(engine)) as session:
        await outbox.add(session, events, EventContext.new("test"))  # type: ignore[arg-type]


def subscribe_probe(bus: KafkaBus, probe: Probe, topics: dict[str, str], group: str) -> None:
    bus.subscribe(group, [topics["accounts"]], probe.consumer.handle_batch)


async def test_relay_crash_between_publish_and_mark_delivers_twice_applies_once(
    engine: AsyncEngine, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    account = uuid.uuid4()
    await stage(engine, topics, [marked(account, "r1")])
    producer_bus = KafkaBus(kafka_bootstrap)
    await producer_bus.start()
    relay = Relay(Outbox("accounts", topics["accounts"]), make_sessionmaker(engine), producer_bus)
    relay.fail_after_publish = True
    with pytest.raises(RelayCrash):
        await relay.publish_once()
    assert await relay.backlog() == 1, "the crashed relay must not have marked the row sent"
    relay.fail_after_publish = False
    assert await relay.publish_once() == 1
    assert await relay.backlog() == 0

    consumer_bus = KafkaBus(kafka_bootstrap)
    probe = Probe(engine, consumer_bus, topics["dlt"])
    subscribe_probe(consumer_bus, probe, topics, f"g-{uuid.uuid4().hex[:6]}")
    await consumer_bus.start()
    try:
        # the topic really holds the event twice ...
        raw = await read_all(kafka_bootstrap, topics["accounts"], 2)
        assert len(raw) == 2 and raw[0].value == raw[1].value
        # ... and the effect happens once
        await eventually(probe.effects, lambda e: len(e) >= 1)
        await asyncio.sleep(1.0)
        assert await probe.effects() == [(str(account), "r1")]
    finally:
        await consumer_bus.stop()
        await producer_bus.stop()


async def read_all(bootstrap: str, topic: str, expected: int) -> list[object]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[object] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(got) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                got.extend(recs)
    finally:
        await consumer.stop()
    return got


async def test_events_of_one_aggregate_are_consumed_in_order(
    engine: AsyncEngine, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    bus = KafkaBus(kafka_bootstrap)
    accounts = [uuid.uuid4() for _ in range(5)]
    events = [marked(a, f"{i}") for i in range(40) for a in accounts]
    for i in range(0, len(events), 17):  # several transactions, interleaved aggregates
        await stage(engine, topics, events[i : i + 17])
    probe = Probe(engine, bus, topics["dlt"])
    subscribe_probe(bus, probe, topics, f"g-{uuid.uuid4().hex[:6]}")
    await bus.start()
    relay = Relay(
        Outbox("accounts", topics["accounts"]), make_sessionmaker(engine), bus, batch_size=23
    )
    try:
        await relay.drain()
        effects = await eventually(probe.effects, lambda e: len(e) >= len(events))
    finally:
        await bus.stop()
    assert len(effects) == len(events)
    for a in accounts:
        assert [r for acc, r in effects if acc == str(a)] == [str(i) for i in range(40)]


async def test_consumer_restarted_mid_stream_resumes_without_loss_or_duplicate(
    engine: AsyncEngine, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    producer = KafkaBus(kafka_bootstrap)
    await producer.start()
    relay = Relay(Outbox("accounts", topics["accounts"]), make_sessionmaker(engine), producer)
    account = uuid.uuid4()
    first = [marked(account, f"{i}") for i in range(300)]
    await stage(engine, topics, first)
    await relay.drain()

    bus1 = KafkaBus(kafka_bootstrap, max_batch=20)
    probe = Probe(engine, bus1, topics["dlt"], delay=0.005)
    subscribe_probe(bus1, probe, topics, group)
    await bus1.start()
    await eventually(probe.effects, lambda e: len(e) > 0)
    await bus1.stop()  # stopped mid-stream: some batches handled, offsets of the rest not
    seen = len(await probe.effects())

    second = [marked(account, f"{i}") for i in range(300, 400)]
    await stage(engine, topics, second)
    await relay.drain()
    bus2 = KafkaBus(kafka_bootstrap, max_batch=50)
    probe2 = Probe(engine, bus2, topics["dlt"])
    subscribe_probe(bus2, probe2, topics, group)
    await bus2.start()
    try:
        effects = await eventually(probe2.effects, lambda e: len(e) >= 400)
        await asyncio.sleep(1.0)
        effects = await probe2.effects()
    finally:
        await bus2.stop()
        await producer.stop()
    assert 0 < seen < 300, "the first consumer must have stopped mid-stream"
    assert [r for _, r in effects] == [str(i) for i in range(400)]


async def test_poison_message_goes_to_dead_letter_topic_and_the_next_is_processed(
    engine: AsyncEngine, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    bus = KafkaBus(kafka_bootstrap)
    account = uuid.uuid4()
    await stage(
        engine,
        topics,
        [marked(account, r) for r in ("ok1", "bad", "ok2")],
    )
    # and one message that is not even an envelope, straight onto the topic
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(topics["accounts"], b"{not json", key=str(account).encode())
    await producer.stop()
    await stage(engine, topics, [marked(account, "ok3")])

    probe = Probe(engine, bus, topics["dlt"], fail_on="bad")
    subscribe_probe(bus, probe, topics, f"g-{uuid.uuid4().hex[:6]}")
    await bus.start()
    relay = Relay(Outbox("accounts", topics["accounts"]), make_sessionmaker(engine), bus)
    try:
        await relay.drain()
        effects = await eventually(probe.effects, lambda e: len(e) >= 3)
        dead = await read_all(kafka_bootstrap, topics["dlt"], 2)
    finally:
        await bus.stop()
    # the failing handler's writes were rolled back; the others applied once, in order
    assert [r for _, r in effects] == ["ok1", "ok2", "ok3"]
    assert len(dead) == 2
    errors = sorted(dict(m.headers)["ila-error"].decode() for m in dead)  # type: ignore[attr-defined]
    assert errors[0].startswith("ValueError: poison")
    assert errors[1].startswith("unreadable envelope")
    async with make_sessionmaker(engine)() as s:
        outcome = await s.scalar(text("SELECT outcome FROM probe.inbox WHERE outcome <> 'applied'"))
        stored = (
            await s.execute(text("SELECT error FROM probe.dead_letters ORDER BY error"))
        ).all()
    assert outcome == "dead_lettered"
    # kept in the database as well, for an operator to replay
    assert [e.split(":")[0] for (e,) in stored] == ["ValueError", "unreadable envelope"]


async def test_a_deadlock_retries_the_batch_instead_of_dead_lettering(engine: AsyncEngine) -> None:
    """Two batches locking the same rows in opposite orders: PostgreSQL kills one with a
    deadlock; its messages must be applied on redelivery, never parked."""
    from shared.bus.inprocess import InProcessBus

    bus = InProcessBus()
    sessions = make_sessionmaker(engine)
    # one attempt: a deadlock must not use up retries and park the message
    consumer = EventConsumer("probe", sessions, bus, max_attempts=1, retry_delay=0)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE probe.rows (id int PRIMARY KEY, n int)"))
        await conn.execute(text("INSERT INTO probe.rows VALUES (1, 0), (2, 0)"))
    gate = asyncio.Barrier(2)
    waited: set[str] = set()

    @consumer.on(AccountTransferred)
    async def touch(session: AsyncSession, env: Envelope, ev: AccountTransferred) -> None:
        first, second = (1, 2) if ev.to_agency_id == "a" else (2, 1)
        await session.execute(text("UPDATE probe.rows SET n = n + 1 WHERE id = :i"), {"i": first})
        if ev.to_agency_id not in waited:  # meet the other batch once, both holding a first lock
            waited.add(ev.to_agency_id)
            await asyncio.wait_for(gate.wait(), 5)
        await session.execute(text("UPDATE probe.rows SET n = n + 1 WHERE id = :i"), {"i": second})

    account = uuid.uuid4()
    msgs = [
        Message(
            "t",
            str(account),
            Envelope.wrap(marked(account, r), source="/t").to_bytes(),
        )
        for r in ("a", "b")
    ]
    outcomes = await asyncio.gather(
        consumer.handle_batch([msgs[0]]),
        consumer.handle_batch([msgs[1]]),
        return_exceptions=True,
    )
    failed = [m for m, o in zip(msgs, outcomes, strict=True) if isinstance(o, Exception)]
    assert len(failed) == 1, outcomes  # the deadlock victim's batch raised: nothing parked
    await consumer.handle_batch(failed)  # the transport's redelivery
    async with sessions() as s:
        assert [r.n for r in await s.execute(text("SELECT n FROM probe.rows ORDER BY id"))] == [
            2,
            2,
        ]
        outcomes_in_inbox = (await s.execute(text("SELECT outcome FROM probe.inbox"))).scalars()
        assert sorted(outcomes_in_inbox) == ["applied", "applied"]
