"""Bulk outbox rows (a yearly allocation's grants) give way to the others: the relay
publishes every unsent row that is not bulk first, after the unsent bulk rows of its key
that precede it, then the oldest bulk rows. A key's rows keep their order; every row is
published once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

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
    async with outbox_schema(db_url, "accounts", pool_size=3) as engine:
        yield engine


class Deliveries:
    """What the relay published, batch by batch, over the in-process bus."""

    def __init__(self, outbox: Outbox) -> None:
        self.bus = InProcessBus()
        self.batches: list[list[Message]] = []
        self.bus.subscribe("probe", [outbox.topic], self.collect)

    async def collect(self, batch: Sequence[Message]) -> None:
        self.batches.append(list(batch))

    def keys(self, batch: int) -> list[str]:
        return [m.key for m in self.batches[batch]]


async def write(engine: AsyncEngine, outbox: Outbox, keys: Sequence[str], *, bulk: bool) -> None:
    """One event for each key, in that order, in one transaction."""
    sessions = make_sessionmaker(engine)
    async with transaction(sessions) as s:
        for key in keys:
            event = AccountSuspended(account_id=uuid.UUID(key), reason_code="other")
            await outbox.add(s, [event], EventContext.new("test"), bulk=bulk)


def keys(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def rows_in_id_order(engine: AsyncEngine) -> list[tuple[str, bytes]]:
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT key, body FROM accounts.outbox ORDER BY id"))
        return [(k, bytes(b)) for k, b in found]


async def test_a_bulk_backlog_does_not_hold_back_the_other_rows(engine: AsyncEngine) -> None:
    outbox = Outbox("accounts")
    backlog = keys(1_000)
    await write(engine, outbox, backlog, bulk=True)
    # after the backlog: an event of a key the backlog holds, and one of a new key
    mixed, new = backlog[700], str(uuid.uuid4())
    await write(engine, outbox, [mixed, new], bulk=False)
    deliveries = Deliveries(outbox)
    await deliveries.bus.start()
    relay = Relay(outbox, make_sessionmaker(engine), deliveries.bus, batch_size=100)

    assert await relay.publish_once() == 101
    first = deliveries.keys(0)
    # the two rows that are not bulk, the bulk row of their key that precedes them (the
    # backlog's 701st), and the 98 oldest bulk rows: in id order
    assert first == [*backlog[:98], mixed, mixed, new]

    while await relay.publish_once():
        pass
    stored = await rows_in_id_order(engine)
    published = [m.value for batch in deliveries.batches for m in batch]
    assert sorted(published) == sorted(body for _, body in stored)  # each once
    assert len(published) == len(set(published)) == 1_002
    by_key: dict[str, list[bytes]] = defaultdict(list)
    for key, body in stored:
        by_key[key].append(body)
    sent: dict[str, list[bytes]] = defaultdict(list)
    for batch in deliveries.batches:
        for m in batch:
            sent[m.key].append(m.value)
    assert sent == by_key  # each key's rows in the order they were written


async def test_bulk_rows_never_pass_a_row_of_their_key_the_batch_had_no_room_for(
    engine: AsyncEngine,
) -> None:
    outbox = Outbox("accounts")
    others, late = keys(100), str(uuid.uuid4())
    await write(engine, outbox, others, bulk=False)  # fill a batch of 100
    await write(engine, outbox, [late], bulk=False)  # the 101st: no room for it
    await write(engine, outbox, [late], bulk=True)  # a bulk row of its key, after it
    deliveries = Deliveries(outbox)
    await deliveries.bus.start()
    relay = Relay(outbox, make_sessionmaker(engine), deliveries.bus, batch_size=100)

    assert await relay.publish_once() == 100
    assert deliveries.keys(0) == others  # no bulk row took the room the batch did not have
    assert await relay.publish_once() == 2
    stored = await rows_in_id_order(engine)
    assert [m.value for m in deliveries.batches[1]] == [body for _, body in stored[-2:]]
    assert await relay.publish_once() == 0


async def test_without_bulk_rows_the_relay_publishes_in_id_order(engine: AsyncEngine) -> None:
    outbox = Outbox("accounts")
    written = keys(30)
    await write(engine, outbox, written, bulk=False)
    deliveries = Deliveries(outbox)
    await deliveries.bus.start()
    relay = Relay(outbox, make_sessionmaker(engine), deliveries.bus, batch_size=20)
    assert await relay.publish_once() == 20
    assert await relay.publish_once() == 10
    assert deliveries.keys(0) + deliveries.keys(1) == written
