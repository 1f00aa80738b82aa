"""A relay with a backlog takes its batches one after another in one transaction, each read and
marked while the last is with the bus: the rows still go out in order, each once, and their
marks are durable only once the bus took every batch of the transaction. A transient failure
publishes the transaction's batches again; a refused row is found alone and the rows after it,
those of the batch read ahead included, wait unsent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.db import make_sessionmaker, transaction
from shared.events.accounts import AccountSuspended
from shared.outbox import EventContext, Outbox, Relay
from tests.support import outbox_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with outbox_schema(db_url, "accounts", pool_size=4) as engine:
        yield engine


async def write(engine: AsyncEngine, outbox: Outbox, keys: Sequence[str], *, bulk: bool) -> None:
    """One event for each key, in that order, in one transaction."""
    async with transaction(make_sessionmaker(engine)) as s:
        for key in keys:
            event = AccountSuspended(account_id=uuid.UUID(key), reason_code="other")
            await outbox.add(s, [event], EventContext.new("test"), bulk=bulk)


async def stored(engine: AsyncEngine) -> list[tuple[int, str, bytes, bool, int]]:
    """Every row in id order: id, key, body, whether its mark is committed, attempts."""
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT id, key, body, sent_at IS NOT NULL, attempts FROM accounts.outbox "
                "ORDER BY id"
            )
        )
        return [(i, k, bytes(b), s, a) for i, k, b, s, a in found]


async def committed_marks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM accounts.outbox WHERE sent_at IS NOT NULL")
        )
        return int(n or 0)


def backlog_keys() -> list[str]:
    """450 rows over 150 keys, three rows a key, the keys' rows spread over the backlog."""
    keys = [str(uuid.uuid4()) for _ in range(150)]
    return keys + keys[::-1] + keys


class Backlogged(InProcessBus):
    """The in-process bus, as if it kept a backlog its readers are 1,000 events behind on."""

    async def backlog(self, topic: str, groups: Sequence[str]) -> int | None:
        return 1_000


class Probe:
    """A consumer group on the in-process bus that records each batch it applied, may fail
    chosen deliveries, and records how many marks were committed while it ran."""

    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, bus: InProcessBus | None = None
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.bus = bus or InProcessBus()
        self.batches: list[list[Message]] = []
        self.calls = 0
        self.marks_seen: list[int] = []
        self.fail_call: int | None = None  # this delivery (1-based) fails transiently
        self.refuse_key: str | None = None  # a batch holding this key is refused, always
        self.bus.subscribe("probe", [outbox.topic], self.collect)

    async def collect(self, batch: Sequence[Message]) -> None:
        self.calls += 1
        self.marks_seen.append(await committed_marks(self.engine))
        if self.calls == self.fail_call:
            raise ConnectionError("the bus went away")
        if self.refuse_key is not None and any(m.key == self.refuse_key for m in batch):
            raise ValueError("refused")
        self.batches.append(list(batch))

    async def relay(self, **options: Any) -> Relay:
        """A relay of the outbox onto this bus, started, in batches of 100."""
        await self.bus.start()
        sessions = make_sessionmaker(self.engine)
        return Relay(self.outbox, sessions, self.bus, batch_size=100, **options)

    def published(self) -> list[Message]:
        return [m for batch in self.batches for m in batch]


async def test_a_backlog_goes_out_batch_after_batch_in_one_transaction_in_each_keys_order(
    engine: AsyncEngine,
) -> None:
    outbox = Outbox("accounts")
    keys = backlog_keys()
    await write(engine, outbox, keys[:420], bulk=True)
    await write(engine, outbox, keys[420:], bulk=False)
    probe = Probe(engine, outbox)
    relay = await probe.relay()

    assert await relay.publish(60.0) == 450
    rows = await stored(engine)
    assert all(sent for *_, sent, _ in rows)
    # four batches or more (the rows that are not bulk pull their keys' bulk rows forward),
    # and no mark was committed while any of them was delivered: one transaction
    assert len(probe.batches) >= 4 and probe.marks_seen == [0] * len(probe.batches)
    published = probe.published()
    assert sorted(m.value for m in published) == sorted(body for _, _, body, *_ in rows)
    assert len({m.value for m in published}) == 450  # each once
    written: dict[str, list[bytes]] = defaultdict(list)
    for _, key, body, *_ in rows:
        written[key].append(body)
    sent: dict[str, list[bytes]] = defaultdict(list)
    for m in published:
        sent[m.key].append(m.value)
    assert sent == written
    assert await relay.publish(60.0) == 0


async def test_publish_once_takes_one_batch_and_a_backlog_ends_with_its_partial_batch(
    engine: AsyncEngine,
) -> None:
    outbox = Outbox("accounts")
    await write(engine, outbox, [str(uuid.uuid4()) for _ in range(250)], bulk=False)
    probe = Probe(engine, outbox)
    relay = await probe.relay()
    assert await relay.publish_once() == 100  # no seconds: one batch, committed with its mark
    assert await committed_marks(engine) == 100
    assert await relay.publish(60.0) == 150  # a full batch, then the last 50
    assert probe.marks_seen == [0, 100, 100]
    assert await relay.publish(60.0) == 0


async def test_a_transient_failure_mid_backlog_publishes_the_transactions_batches_again(
    engine: AsyncEngine,
) -> None:
    outbox = Outbox("accounts")
    await write(engine, outbox, [str(uuid.uuid4()) for _ in range(450)], bulk=True)
    probe = Probe(engine, outbox)
    probe.fail_call = 3
    relay = await probe.relay()

    with pytest.raises(ConnectionError):
        await relay.publish(60.0)
    # two batches were applied, but their marks went with the transaction: none is sent
    assert len(probe.batches) == 2
    assert await committed_marks(engine) == 0
    assert await relay.publish(60.0) == 450
    rows = await stored(engine)
    assert all(sent for *_, sent, _ in rows)
    published = [m.value for m in probe.published()]
    assert set(published) == {body for _, _, body, *_ in rows}
    assert len(published) == 650  # the first two batches twice: consumers' inboxes skip them


async def test_a_refused_row_mid_backlog_is_found_alone_and_the_batch_read_ahead_waits(
    engine: AsyncEngine,
) -> None:
    outbox = Outbox("accounts")
    keys = [str(uuid.uuid4()) for _ in range(450)]
    await write(engine, outbox, keys, bulk=True)
    refused = keys[130]  # in the second batch
    probe = Probe(engine, outbox)
    probe.refuse_key = refused
    relay = await probe.relay(park_after=2)

    # the first batch, then the second's thirty rows before the refused one, found one by one
    assert await relay.publish(60.0) == 130
    rows = await stored(engine)
    assert [sent for *_, sent, _ in rows] == [True] * 130 + [False] * 320
    assert rows[130][1] == refused and rows[130][4] == 1
    assert [m.key for m in probe.published()] == keys[:130]
    # the next try parks it after its second refusal, and the rows after it flow on
    while await relay.publish(60.0):
        pass
    rows = await stored(engine)
    assert [sent for *_, sent, _ in rows] == [True] * 130 + [False] + [True] * 319
    assert await relay.parked() == 1
    assert [m.key for m in probe.published()] == keys[:130] + keys[131:]


async def test_bulk_rows_bounded_by_their_readers_backlog_go_one_batch_a_transaction(
    engine: AsyncEngine,
) -> None:
    # over Kafka a relay faster than the topic's readers would only fill the topic up to the
    # bound sooner, and every event that answers a person would wait behind all of it
    outbox = Outbox("accounts")
    await write(engine, outbox, [str(uuid.uuid4()) for _ in range(350)], bulk=True)
    probe = Probe(engine, outbox)
    bound = {"readers": ["payments"], "max_bulk_lag": 20_000}
    relay = await probe.relay(**bound)
    # in process the bus keeps no backlog: batch after batch, as with rows that are not bulk
    assert await relay.publish(60.0) == 350
    assert probe.marks_seen == [0, 0, 0, 0]

    # a bus that keeps a backlog of its own (Kafka), its readers 1,000 events behind
    probe = Probe(engine, outbox, Backlogged())
    relay = await probe.relay(**bound)
    await write(engine, outbox, [str(uuid.uuid4()) for _ in range(250)], bulk=True)
    # the first batch goes before any backlog is measured, the second is read as it goes;
    # measured, the bulk rows go one batch a transaction
    assert await relay.publish(60.0) == 200
    assert await relay.publish(60.0) == 50
    assert probe.marks_seen == [350, 350, 550]
    # rows that are not bulk still go batch after batch in one transaction
    await write(engine, outbox, [str(uuid.uuid4()) for _ in range(250)], bulk=False)
    assert await relay.publish(60.0) == 250
    assert probe.marks_seen[-3:] == [600, 600, 600]
    assert await relay.publish(60.0) == 0
