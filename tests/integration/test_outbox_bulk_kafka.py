"""Over Kafka, bulk rows wait in the outbox while the topic's readers are behind: the relay
publishes them only up to ``max_bulk_lag`` events ahead of the furthest-behind reader's
committed offsets, while the rows that are not bulk go at once. When the reader catches
up, the rest follow, each once, each key's rows in order. On the real broker and database."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import Message
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics
from shared.db import make_sessionmaker, transaction
from shared.events.accounts import AccountSuspended
from shared.outbox import EventContext, Outbox, Relay
from tests.support import eventually, outbox_schema

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with outbox_schema(db_url, "accounts", pool_size=3) as engine:
        yield engine


class Reader:
    """A consumer group that reads the topic while it is started, keeping what it got."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.got: list[Message] = []
        self.bus: KafkaBus | None = None

    async def handle(self, batch: Sequence[Message]) -> None:
        self.got.extend(batch)

    async def start(self) -> None:
        self.bus = KafkaBus(self.bootstrap, client_id=self.group)
        self.bus.subscribe(self.group, [self.topic], self.handle)
        await self.bus.start()

    async def stop(self) -> None:
        assert self.bus is not None
        await self.bus.stop()  # commits what it handled

    async def count(self) -> int:
        return len(self.got)


async def write(engine: AsyncEngine, outbox: Outbox, keys: Sequence[str], *, bulk: bool) -> None:
    async with transaction(make_sessionmaker(engine)) as s:
        for key in keys:
            event = AccountSuspended(account_id=uuid.UUID(key), reason_code="other")
            await outbox.add(s, [event], EventContext.new("test"), bulk=bulk)


async def test_bulk_rows_wait_in_the_outbox_while_the_readers_are_behind(
    engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    topic = f"bulk{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, 2)])
    outbox = Outbox("accounts", topic=topic)
    group = f"reader-{topic}"
    reader = Reader(kafka_bootstrap, group, topic)
    publisher = KafkaBus(kafka_bootstrap)
    await publisher.start()
    try:
        # the reader consumes a first event and stops: it is behind from now on
        await reader.start()
        await asyncio.sleep(1.0)  # joined
        await publisher.publish([Message(topic, "hello", b"{}")])
        await eventually(reader.count, lambda n: n == 1)
        await reader.stop()
        assert await publisher.backlog(topic, [group]) == 0
        # a group that has not consumed the topic yet is not waited for
        assert await publisher.backlog(topic, [f"nobody-{topic}"]) is None
        assert await publisher.backlog(topic, [group, f"nobody-{topic}"]) == 0

        backlog = [str(uuid.uuid4()) for _ in range(1_000)]
        await write(engine, outbox, backlog, bulk=True)
        relay = Relay(
            outbox,
            make_sessionmaker(engine),
            publisher,
            batch_size=100,
            readers=[group],
            max_bulk_lag=250,
        )
        # the first batch goes before anything is measured; then the bound holds
        assert await relay.drain() == 250
        assert relay.holding
        assert await publisher.backlog(topic, [group]) == 250

        # a learner's event passes the held backlog, with the bulk row of its key before it
        mixed, new = backlog[900], str(uuid.uuid4())
        await write(engine, outbox, [mixed, new], bulk=False)
        assert await relay.publish_once() == 3
        assert await relay.publish_once() == 0  # the bulk rows still wait
        assert await publisher.backlog(topic, [group]) == 253

        # the reader catches up, and the relay running publishes the rest as it does
        relay.start()
        await reader.start()
        await eventually(reader.count, lambda n: n >= 1 + 1_002, timeout=60)
        await relay.stop()
        await reader.stop()
    finally:
        await publisher.stop()

    async with engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT key, body FROM accounts.outbox ORDER BY id"))
        ).all()
        unsent = await conn.scalar(
            text("SELECT count(*) FROM accounts.outbox WHERE sent_at IS NULL")
        )
    assert unsent == 0
    got = [m for m in reader.got if m.key != "hello"]
    assert sorted(m.value for m in got) == sorted(bytes(b) for _, b in stored)  # each once
    written: dict[str, list[bytes]] = defaultdict(list)
    for key, body in stored:
        written[key].append(bytes(body))
    read: dict[str, list[bytes]] = defaultdict(list)
    for m in got:
        read[m.key].append(m.value)
    assert read == written  # each key's events in the order they were written
