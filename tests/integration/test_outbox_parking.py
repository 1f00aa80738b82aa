"""The outbox relay never blocks: a row the broker refuses is parked after a few tries and the
rows after it flow on; a payout of ~27k claims is told in bounded parts that the real broker
accepts (a single event would exceed its 1 MiB message limit)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ila.registry import all_definitions
from services.payments.domain import payouts as rules
from shared.bus import TYPE_HEADER
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics
from shared.db import make_sessionmaker, transaction
from shared.events import Envelope
from shared.events.accounts import AccountSuspended
from shared.events.payments import CLAIMS_PER_PART, PayoutSent
from shared.outbox import DEFAULT_MAX_EVENT_BYTES, EventContext, Outbox, Relay
from tests.support import eventually, outbox_schema, running_app, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

KAFKA_MESSAGE_LIMIT = 1024 * 1024


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with outbox_schema(db_url, "accounts", pool_size=5) as engine:
        yield engine


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"t{uuid.uuid4().hex[:8]}.outbox"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 2)])
    return name


async def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    return [r.value for r in await read_records(bootstrap, topic, expected)]


async def read_records(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"g{uuid.uuid4().hex[:8]}",
        fetch_max_bytes=50 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        for _ in range(100):
            batches = await consumer.getmany(timeout_ms=300)
            records += [r for recs in batches.values() for r in recs]
            if len(records) >= expected:
                break
    finally:
        await consumer.stop()
    return records


def parked_total() -> float:
    return REGISTRY.get_sample_value("ila_outbox_parked_total", {"service": "accounts"}) or 0.0


async def test_each_event_goes_out_with_its_type_in_a_header(
    engine: AsyncEngine, kafka_bootstrap: str, topic: str
) -> None:
    sessions = make_sessionmaker(engine)
    outbox = Outbox("accounts", topic)
    async with transaction(sessions) as session:
        await outbox.add(
            session,
            [AccountSuspended(account_id=uuid.uuid4(), reason_code="other")],
            EventContext.new("test"),
        )
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        assert await Relay(outbox, sessions, bus).publish_once() == 1
    finally:
        await bus.stop()
    [record] = await read_records(kafka_bootstrap, topic, 1)
    envelope = Envelope.from_bytes(record.value)
    assert envelope.type == AccountSuspended.cloudevent_type()
    assert list(record.headers) == [(TYPE_HEADER, envelope.type.encode())]


async def test_a_row_the_broker_refuses_is_parked_and_the_rows_after_it_flow(
    engine: AsyncEngine, kafka_bootstrap: str, topic: str
) -> None:
    sessions = make_sessionmaker(engine)
    outbox = Outbox("accounts", topic)
    marks = {name: uuid.uuid4() for name in ("before", "after0", "after1", "after2")}
    before = [AccountSuspended(account_id=marks["before"], reason_code="other")]
    after = [AccountSuspended(account_id=marks[f"after{i}"], reason_code="other") for i in range(3)]
    async with transaction(sessions) as session:
        await outbox.add(session, before, EventContext.new("test"))
        # a poisoned row: larger than the broker takes, and the relay's own guard is set
        # above it, so it is the broker's client that refuses it, every time
        await session.execute(
            text(
                "INSERT INTO accounts.outbox (event_id, topic, key, type, body) "
                "VALUES (:e, :t, 'k', 'probe.Huge', :b)"
            ),
            {"e": uuid.uuid4(), "t": topic, "b": b"x" * (2 * KAFKA_MESSAGE_LIMIT)},
        )
        await outbox.add(session, after, EventContext.new("test"))
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    relay = Relay(
        outbox, sessions, bus, idle_interval=0.05, park_after=3, max_event_bytes=10 * 2**20
    )
    parked_before = parked_total()
    relay.start()
    try:
        await eventually(relay.backlog, lambda n: n == 0, timeout=30)
    finally:
        await relay.stop()
        await bus.stop()
    assert await relay.parked() == 1
    assert parked_total() == parked_before + 1
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT type, attempts, last_error, sent_at FROM accounts.outbox "
                    "WHERE parked_at IS NOT NULL"
                )
            )
        ).one()
    assert row.type == "probe.Huge" and row.attempts == 3 and row.sent_at is None
    assert "TooLarge" in row.last_error, row.last_error
    values = await read_all(kafka_bootstrap, topic, 4)
    accounts = {Envelope.from_bytes(v).payload().account_id for v in values}  # type: ignore[attr-defined]
    assert accounts == set(marks.values())
    # an operator re-queues the parked row after a fix: it waits to be published again
    async with engine.connect() as conn:
        parked_id = await conn.scalar(
            text("SELECT id FROM accounts.outbox WHERE parked_at IS NOT NULL")
        )
    assert await relay.requeue(parked_id) is True
    assert await relay.parked() == 0 and await relay.backlog() == 1
    assert await relay.requeue(parked_id) is False


async def test_the_relay_parks_at_once_an_event_above_its_limit(
    engine: AsyncEngine, kafka_bootstrap: str, topic: str
) -> None:
    sessions = make_sessionmaker(engine)
    outbox = Outbox("accounts", topic)
    async with transaction(sessions) as session:
        await session.execute(
            text(
                "INSERT INTO accounts.outbox (event_id, topic, key, type, body) "
                "VALUES (:e, :t, 'k', 'probe.Huge', :b)"
            ),
            {"e": uuid.uuid4(), "t": topic, "b": b"x" * (DEFAULT_MAX_EVENT_BYTES + 1)},
        )
        await outbox.add(
            session,
            [AccountSuspended(account_id=uuid.uuid4(), reason_code="other")],
            EventContext.new(),
        )
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        relay = Relay(outbox, sessions, bus)
        assert await relay.publish_once() == 2  # one parked, one sent, in one pass
        assert await relay.backlog() == 0 and await relay.parked() == 1
    finally:
        await bus.stop()
    async with engine.connect() as conn:
        error = await conn.scalar(
            text("SELECT last_error FROM accounts.outbox WHERE parked_at IS NOT NULL")
        )
    assert "exceeds the limit" in error


async def test_a_payout_of_27k_claims_flows_through_the_broker_in_bounded_parts(
    engine: AsyncEngine, kafka_bootstrap: str, topic: str
) -> None:
    claim_ids = tuple(uuid.uuid4() for _ in range(27_000))
    # told as one event, the claim ids alone would be over the broker's limit
    assert len(json.dumps([str(c) for c in claim_ids])) > KAFKA_MESSAGE_LIMIT
    payout = rules.Payout(
        payout_id=uuid.uuid4(),
        run_id=uuid.uuid4(),
        provider_id="prov-1",
        status="proposed",
        amount=27_000 * 100,
        currency="EUR",
        creditor_name="Provider",
        iban="FR7630006000011234567890189",
        bic=None,
        execution_date=date.today(),
        created_at=datetime.now(UTC),
    )
    after, events = rules.release(payout, claim_ids)
    assert after.status == "sent"
    sessions = make_sessionmaker(engine)
    outbox = Outbox("accounts", topic)
    async with transaction(sessions) as session:
        await outbox.add(session, events, EventContext.new("test"))
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        relay = Relay(outbox, sessions, bus)
        await relay.drain()
        assert await relay.backlog() == 0 and await relay.parked() == 0
    finally:
        await bus.stop()
    values = await read_all(kafka_bootstrap, topic, len(events))
    parts = [Envelope.from_bytes(v).payload() for v in values]
    assert all(isinstance(p, PayoutSent) for p in parts)
    sent = [p for p in parts if isinstance(p, PayoutSent)]
    expected_parts = -(-len(claim_ids) // CLAIMS_PER_PART)
    assert sorted(p.part for p in sent) == list(range(1, expected_parts + 1))
    assert {p.parts for p in sent} == {expected_parts}
    assert {(p.payout_id, p.run_id, p.amount) for p in sent} == {
        (payout.payout_id, payout.run_id, payout.amount)
    }
    assert all(len(v) < DEFAULT_MAX_EVENT_BYTES for v in values)
    received = [c for p in sent for c in p.claim_ids]
    assert len(received) == len(claim_ids) and set(received) == set(claim_ids)


async def test_readiness_and_metrics_show_parked_rows(db_url: str) -> None:
    """A parked row is an alert, not unreadiness: /readyz stays 200 and names it, /metrics
    counts it."""
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        assert (await c.get("/readyz")).json()["outbox_parked"] == {}
        sessions = app.state.runtimes["accounts"].sessions
        async with transaction(sessions) as session:
            await session.execute(
                text(
                    "INSERT INTO accounts.outbox (event_id, topic, key, type, body) "
                    "VALUES (:e, 'ila.accounts', 'k', 'probe.Huge', :b)"
                ),
                {"e": uuid.uuid4(), "b": b"x" * (DEFAULT_MAX_EVENT_BYTES + 1)},
            )
        relay = app.state.runtimes["accounts"].relay
        await eventually(relay.parked, lambda n: n == 1, timeout=20)
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["outbox_parked"] == {"accounts": 1}
        metrics = (await c.get("/metrics")).text
    assert 'ila_outbox_parked_rows{service="accounts"} 1.0' in metrics
    assert 'ila_outbox_parked_total{service="accounts"}' in metrics
