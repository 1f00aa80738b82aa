"""Nothing stops silently: a consumer loop that meets a refused commit goes on, one that
dies is restarted, and /readyz says so while a group is down. Offsets are committed behind
the batches, never before them, and the last ones on stop. On the real Kafka broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError

from ila.registry import all_definitions
from services.ledger.main import definition as ledger
from shared.bus import Message, set_topic_prefix, topic_for
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics
from shared.service import topic_specs
from tests.support import eventually, running_app, settings_for

pytestmark = [pytest.mark.kafka]


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"sup{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 2)])
    return name


class Collector:
    def __init__(self) -> None:
        self.values: set[bytes] = set()

    async def __call__(self, batch: Sequence[Message]) -> None:
        self.values.update(m.value for m in batch)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    yield bus
    await bus.stop()


async def send(producer: KafkaBus, topic: str, values: range) -> None:
    await producer.publish([Message(topic, str(i % 3), str(i).encode()) for i in values])


def wanted(values: range) -> set[bytes]:
    return {str(i).encode() for i in values}


async def test_a_commit_refused_after_a_rebalance_does_not_end_the_consumer(
    kafka_bootstrap: str, topic: str, producer: KafkaBus
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    bus = KafkaBus(kafka_bootstrap, retry_backoff=0.1)
    got = Collector()
    bus.subscribe(group, [topic], got)
    await bus.start()
    try:
        consumer = bus._consumers[group]
        real = consumer.commit
        refused = 0

        async def commit(offsets: Any = None) -> None:
            nonlocal refused
            if refused == 0:
                refused += 1
                raise CommitFailedError("the group rebalanced")
            await real(offsets)

        consumer.commit = commit  # type: ignore[method-assign]
        await send(producer, topic, range(0, 5))
        await eventually(lambda: _value(got.values), lambda v: wanted(range(0, 5)) <= v)
        await send(producer, topic, range(5, 10))
        await eventually(lambda: _value(got.values), lambda v: wanted(range(0, 10)) <= v)
        assert refused == 1
        assert bus.down() == [] and bus.restarts[group] == 0
    finally:
        await bus.stop()


async def test_offsets_are_committed_behind_the_batches_and_the_last_ones_on_stop(
    kafka_bootstrap: str, topic: str, producer: KafkaBus
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    bus = KafkaBus(kafka_bootstrap, max_batch=4, commit_interval=0.3)
    got = Collector()
    bus.subscribe(group, [topic], got)
    await bus.start()
    commits: list[dict[Any, int]] = []
    try:
        consumer = bus._consumers[group]
        real = consumer.commit

        async def slow(offsets: Any = None) -> None:
            await asyncio.sleep(0.5)  # a slow coordinator does not hold up the batches
            await real(offsets)
            commits.append(dict(offsets))

        consumer.commit = slow  # type: ignore[method-assign]
        await send(producer, topic, range(0, 40))
        await eventually(lambda: _value(got.values), lambda v: wanted(range(0, 40)) <= v)
        assert len(commits) <= 1, "ten batches of four were handled before the second commit"
    finally:
        await bus.stop()
    # the stop committed every handled offset: the group's next consumer gets nothing again
    assert sum(commits[-1].values()) == 40
    again = KafkaBus(kafka_bootstrap)
    seen = Collector()
    again.subscribe(group, [topic], seen)
    await again.start()
    try:
        await send(producer, topic, range(40, 45))
        await eventually(lambda: _value(seen.values), lambda v: wanted(range(40, 45)) <= v)
        assert seen.values == wanted(range(40, 45))
    finally:
        await again.stop()


async def test_a_consumer_loop_that_dies_is_restarted_and_loses_nothing(
    kafka_bootstrap: str, topic: str, producer: KafkaBus
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    bus = KafkaBus(kafka_bootstrap, retry_backoff=0.1)
    got = Collector()
    bus.subscribe(group, [topic], got)
    await bus.start()
    try:
        consumer = bus._consumers[group]

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the fetcher broke")

        consumer.getmany = broken  # type: ignore[method-assign]
        await eventually(lambda: _value(bus.restarts[group]), lambda n: n >= 1)
        await send(producer, topic, range(0, 20))
        await eventually(lambda: _value(got.values), lambda v: wanted(range(0, 20)) <= v)
        assert bus._consumers[group] is not consumer  # a fresh consumer took over
        assert bus.down() == []
    finally:
        await bus.stop()


@pytest.fixture
def own_prefix() -> Iterator[None]:
    """The test sets the process's topic prefix: the tests after it get theirs back."""
    previous = topic_for("")
    yield
    set_topic_prefix(previous)


async def test_readyz_answers_503_while_a_consumer_group_is_down(
    db_url: str, kafka_bootstrap: str, own_prefix: None
) -> None:
    settings = settings_for(
        db_url, kafka_bootstrap=kafka_bootstrap, kafka_topic_prefix=f"r{uuid.uuid4().hex[:6]}."
    )
    set_topic_prefix(settings.kafka_topic_prefix)
    await ensure_topics(kafka_bootstrap, topic_specs(all_definitions(), 1))
    bus = KafkaBus(kafka_bootstrap, retry_backoff=0.1)
    async with running_app([ledger()], settings, bus=bus, run_jobs=False) as (_, c):
        assert (await c.get("/readyz")).status_code == 200
        healthy = bus._new_consumer
        failing = True

        async def new_consumer(group: str, topics: Sequence[str]) -> Any:
            if failing:
                raise RuntimeError("the broker refuses the group")
            return await healthy(group, topics)

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the fetcher broke")

        bus._new_consumer = new_consumer  # type: ignore[method-assign]
        bus._consumers["ledger"].getmany = broken  # type: ignore[method-assign]
        r = await eventually(lambda: c.get("/readyz"), lambda r: r.status_code == 503)
        assert r.json()["checks"]["consumer.ledger"] == "down"
        metrics = (await c.get("/metrics")).text
        assert 'ila_consumer_restarts_total{group="ledger"}' in metrics
        failing = False
        await eventually(lambda: c.get("/readyz"), lambda r: r.status_code == 200, timeout=30)


async def _value(v: Any) -> Any:
    return v
