"""A consumer group that may wait (``fetch_wait_ms``: the read models' services) gets the
events published over a short while in one batch; a group in a saga gets each at once. On
the real Kafka broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from shared.bus import Message
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics
from tests.support import eventually

pytestmark = [pytest.mark.kafka]


class Batches:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def __call__(self, batch: Sequence[Message]) -> None:
        self.sizes.append(len(batch))

    async def seen(self) -> int:
        return sum(self.sizes)


async def test_a_waiting_group_gets_what_came_meanwhile_in_one_batch(kafka_bootstrap: str) -> None:
    topic = f"fw{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    eager, waiting = Batches(), Batches()
    bus = KafkaBus(kafka_bootstrap)
    bus.subscribe(f"eager-{topic}", [topic], eager)
    bus.subscribe(f"waiting-{topic}", [topic], waiting, fetch_wait_ms=2000)
    await bus.start()
    try:
        await asyncio.sleep(1.0)  # both groups joined and fetching
        for i in range(6):
            await bus.publish([Message(topic, "k", str(i).encode())])
            await asyncio.sleep(0.1)
        await eventually(eager.seen, lambda n: n == 6)
        await eventually(waiting.seen, lambda n: n == 6)
    finally:
        await bus.stop()
    assert len(eager.sizes) >= 4, eager.sizes  # each as it came (two may share a fetch)
    assert len(waiting.sizes) <= 2, waiting.sizes  # what came within the wait, together
