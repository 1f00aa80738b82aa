"""The local Kafka broker from ila.kafka, exercised with the aiokafka clients
the services use: explicit topics, idempotent producer, manual-commit consumer, shutdown."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from ila.kafka import (
    JVM_OPTIONS,
    JVM_OPTIONS_ENV,
    STATE_FILE,
    KafkaBroker,
    jvm_options,
    start_broker,
    stop_broker,
    stop_from_workdir,
)
from ila.kafka_jars import fetch_jars
from ila.kafka_probe import wait_ready
from shared.bus.topics import TopicSpec, ensure_topics
from tests.support import retention_ms

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime"),
]

TOPIC = "ila.test.ledger-events"
KEY = b"account-42"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    started = start_broker(tmp_path_factory.mktemp("kafka"), timeout=120.0)
    yield started
    stop_broker(started)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_wait_ready_is_awaitable(broker: KafkaBroker) -> None:
    await wait_ready(broker.bootstrap, timeout=10.0)


def test_the_broker_runs_with_the_configured_jvm_flags(broker: KafkaBroker) -> None:
    assert broker.pid is not None
    with open(f"/proc/{broker.pid}/cmdline", "rb") as f:
        command = f.read().decode().split("\0")
    heap = next(i for i, word in enumerate(command) if word.startswith("-Xmx"))
    assert command[heap + 1 : command.index("-Djava.awt.headless=true")] == jvm_options()


def test_jvm_flags_come_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JVM_OPTIONS_ENV, raising=False)
    assert jvm_options() == list(JVM_OPTIONS)
    assert "-XX:TieredStopAtLevel=1" in jvm_options()
    monkeypatch.setenv(JVM_OPTIONS_ENV, "-XX:+UseSerialGC  -Dnote='two words'")
    assert jvm_options() == ["-XX:+UseSerialGC", "-Dnote=two words"]
    monkeypatch.setenv(JVM_OPTIONS_ENV, "")
    assert jvm_options() == []


async def test_idempotent_producer_and_consumer_round_trip(broker: KafkaBroker) -> None:
    await ensure_topics(broker.bootstrap, [TopicSpec(TOPIC, config={"retention.ms": "-1"})])

    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(TOPIC, key=KEY, value=f"event-{i}".encode())
            for i in range(3)
        ]
        # The producer id comes from InitProducerId; -1 would mean idempotence silently
        # did not happen. aiokafka has no public accessor for it.
        producer_id = producer._txn_manager.producer_id
    finally:
        await producer.stop()
    assert producer_id >= 0
    assert len({metadata.partition for metadata in sent}) == 1
    assert [metadata.offset for metadata in sent] == [0, 1, 2]

    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id="ila-test-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        received: list[Any] = []
        async with asyncio.timeout(30):
            while len(received) < 3:
                batches = await consumer.getmany(timeout_ms=1000)
                received += [record for records in batches.values() for record in records]
        await consumer.commit()
        committed = await consumer.committed(
            TopicPartition(received[0].topic, received[0].partition)
        )
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in received] == [
        (KEY, b"event-0"),
        (KEY, b"event-1"),
        (KEY, b"event-2"),
    ]
    assert committed == 3

    # The broker's own view: the stored batches carry the producer id and sequence numbers.
    segment = broker.data_dir / f"{TOPIC}-{sent[0].partition}" / "00000000000000000000.log"
    dump_tool = await asyncio.create_subprocess_exec(
        "java",
        "-cp",
        f"{fetch_jars()}/*",
        "kafka.tools.DumpLogSegments",
        "--files",
        str(segment),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await dump_tool.communicate()
    assert dump_tool.returncode == 0
    dump = out.decode()
    batches = re.findall(
        r"baseSequence: (-?\d+) .*producerId: (-?\d+) producerEpoch: (-?\d+)", dump
    )
    assert batches == [(str(seq), str(producer_id), "0") for seq in range(3)], dump


async def test_topic_config_is_set_and_existing_topics_left_alone(broker: KafkaBroker) -> None:
    spec = TopicSpec(TOPIC, config={"retention.ms": "-1"})
    await ensure_topics(broker.bootstrap, [spec])
    assert await retention_ms(broker.bootstrap, TOPIC) == "-1"

    # A second call with other settings must neither fail nor change the existing topic.
    await ensure_topics(broker.bootstrap, [TopicSpec(TOPIC, config={"retention.ms": "1000"})])
    assert await retention_ms(broker.bootstrap, TOPIC) == "-1"


async def test_topics_are_not_auto_created(broker: KafkaBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            async with asyncio.timeout(15):
                await producer.send_and_wait("ila.test.never-created", b"lost")
    finally:
        await producer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert "ila.test.never-created" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_stop_then_restart_keeps_data_and_stop_from_workdir(broker: KafkaBroker) -> None:
    workdir = broker.workdir
    assert (workdir / STATE_FILE).is_file()
    process = broker.process
    assert process is not None

    stop_broker(broker)
    # 143 is the JVM's exit status after a clean shutdown triggered by SIGTERM.
    assert process.returncode in (0, 143)
    assert not (workdir / STATE_FILE).exists()
    assert not _port_open(broker.port)
    assert "shut down completely" in (broker.log_dir / "server.log").read_text()

    # Same workdir again: storage is already formatted and the topic survives the restart.
    again = start_broker(workdir)
    try:
        assert (workdir / STATE_FILE).is_file()
        admin = AIOKafkaAdminClient(bootstrap_servers=again.bootstrap)
        await admin.start()
        try:
            assert TOPIC in await admin.list_topics()
        finally:
            await admin.close()
        # What `make down` does from another process: find the broker through broker.json.
        assert stop_from_workdir(workdir) is True
        assert again.process is not None
        assert again.process.wait(timeout=5) in (0, 143)
        assert stop_from_workdir(workdir) is False
    finally:
        stop_broker(again)


def test_new_cluster_ids_never_look_like_an_option() -> None:
    # About one random id in 64 starts with "-"; 2,000 draws would almost surely show one.
    from ila.kafka import _new_cluster_id

    ids = [_new_cluster_id() for _ in range(2000)]
    assert all(len(text) == 22 and not text.startswith("-") for text in ids)


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A cluster kept in a state file may carry such an id; the storage tool must take it.
    from ila.kafka import SERVER_PROPERTIES, _format_storage, _server_properties

    java = shutil.which("java")
    assert java is not None
    workdir = tmp_path_factory.mktemp("kafka-dash-id")
    (workdir / SERVER_PROPERTIES).write_text(_server_properties(workdir, 19092, 19093))
    _format_storage(java, fetch_jars(), workdir, cluster_id="-Hx7xNFUTdSwkHdyErdAOg")
    meta = (workdir / "data" / "meta.properties").read_text()
    assert "cluster.id=-Hx7xNFUTdSwkHdyErdAOg" in meta
