"""``KafkaBus.publish`` against the real broker: the batches it builds per partition lose,
double and reorder nothing, and each message lands where Kafka's partitioner puts its key."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from shared.bus import Message
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.kafka]


async def read_all(bootstrap: str, topics: list[str], expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
        # anything beyond what was published would come now
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got


async def test_published_batches_keep_each_keys_order_and_partition(kafka_bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = {f"t{suffix}.six": 6, f"t{suffix}.three": 3}
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, n) for t, n in topics.items()])
    rng = random.Random(3)
    keys = [str(uuid.uuid4()) for _ in range(120)]
    # bodies of 0.2-3 KB: each partition's messages of one call fill several 16 KB batches
    messages = [
        Message(
            topic,
            rng.choice(keys),
            f"{n:06d}".encode() + rng.randbytes(rng.randint(100, 1500)).hex().encode(),
            (("ce_type", f"probe.{n}".encode()),),
        )
        for n in range(4000)
        for topic in [rng.choice(list(topics))]
    ]
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        for i in range(0, len(messages), 1000):
            await bus.publish(messages[i : i + 1000])
    finally:
        await bus.stop()
    got = await read_all(kafka_bootstrap, list(topics), len(messages))

    assert sorted(r.value for r in got) == sorted(m.value for m in messages)
    reference = DefaultPartitioner()
    sent: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for m in messages:
        sent[(m.topic, m.key)].append(m.value)
    received: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for r in sorted(got, key=lambda r: (r.topic, r.partition, r.offset)):
        key = r.key.decode()
        partitions = list(range(topics[r.topic]))
        assert r.partition == reference(r.key, partitions, partitions)
        assert dict(r.headers)["ce_type"] == b"probe." + str(int(r.value[:6])).encode()
        received[(r.topic, key)].append(r.value)
    assert received == sent
