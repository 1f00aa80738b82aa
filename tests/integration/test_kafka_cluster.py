"""The three-broker KRaft cluster from the Maven jars: topics replicated three times with
min.insync.replicas 2; with one broker killed, an acks=all producer goes on and a consumer
reads every record; the broker restarts on its ports with its data and catches up."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ila.kafka_cluster import KafkaCluster, kill_node, restart_node
from shared.bus import Message
from shared.bus.kafka import KafkaBus
from shared.bus.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def read(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=str(uuid.uuid4())
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(200):
            batches = await consumer.getmany(timeout_ms=300)
            values += [r.value for recs in batches.values() for r in recs]
            if len(values) >= expected:
                break
    finally:
        await consumer.stop()
    return values


async def test_a_replicated_topic_loses_nothing_when_a_broker_dies(
    kafka_cluster: KafkaCluster,
) -> None:
    bootstrap = kafka_cluster.bootstrap
    topic = f"t{uuid.uuid4().hex[:8]}.cluster"
    await ensure_topics(bootstrap, [TopicSpec(topic, 3)], replication_factor=3)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        replicas = {len(p["replicas"]) for p in described[0]["partitions"]}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    finally:
        await admin.close()
    assert replicas == {3}
    broker_config = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert broker_config["min.insync.replicas"] == "2"
    assert broker_config["default.replication.factor"] == "3"

    bus = KafkaBus(bootstrap)
    await bus.start()
    try:
        await bus.publish([Message(topic, f"k{i}", f"before-{i}".encode()) for i in range(50)])
        await asyncio.to_thread(kill_node, kafka_cluster, 2)
        # acks=all with two of three replicas in sync: accepted, on two nodes
        await asyncio.wait_for(
            bus.publish([Message(topic, f"k{i}", f"during-{i}".encode()) for i in range(50)]),
            60,
        )
    finally:
        await bus.stop()
    try:
        values = await read(bootstrap, topic, 100)
    finally:
        await asyncio.to_thread(restart_node, kafka_cluster, 2)
    assert sorted(v.decode() for v in values) == sorted(
        [f"before-{i}" for i in range(50)] + [f"during-{i}" for i in range(50)]
    )
    # the restarted node serves again: reading through it alone finds every record
    only_two = f"127.0.0.1:{kafka_cluster.ports[2][0]}"
    assert len(await read(only_two, topic, 100)) == 100
