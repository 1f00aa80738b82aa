"""Kafka over SASL_SSL against a real broker started with certificates this run made: who
may write and read which topic, and that nobody gets in without a login or past a broker
whose certificate the client cannot verify."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ila.kafka import KafkaBroker
from ila.kafka_acls import all_acls, grant
from ila.kafka_secure import AUDIT
from ila.tls import make_ca
from shared.bus.kafka import KafkaBus
from shared.bus.security import PLAINTEXT, KafkaSecurity
from shared.bus.topics import TopicSpec, ensure_topics
from shared.db import make_sessionmaker, transaction
from shared.events.accounts import AccountSuspended
from shared.outbox import EventContext, Outbox, Relay
from shared.settings import SERVICES
from tests.support import outbox_schema

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime"),
]


@pytest.fixture(scope="module")
async def prefix(secure_kafka: KafkaBroker) -> AsyncIterator[str]:
    """Every service's topics under a fresh prefix, created by the super user, with the
    services' ACLs on them."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    admin = secure_kafka.admin_security
    await grant(secure_kafka.bootstrap, admin, all_acls(prefix))
    topics = [TopicSpec(f"{prefix}{s}{end}", 1) for s in SERVICES for end in ("", ".dlt")]
    await ensure_topics(secure_kafka.bootstrap, topics, security=admin)
    yield prefix


def _as(broker: KafkaBroker, user: str) -> KafkaSecurity:
    assert broker.secure is not None
    return broker.secure.client(user)


async def _send(bootstrap: str, security: KafkaSecurity, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=10_000,
        **security.client_options(),
    )
    try:
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, b"ReservationCaptured"), 20)
    finally:
        await producer.stop()


async def _read(bootstrap: str, security: KafkaSecurity, topic: str, group: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        **security.client_options(),
    )
    try:
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_committed(tp)
        batch = await consumer.getmany(tp, timeout_ms=5000)
        await consumer.commit()
        return [record.value for record in batch.get(tp, []) if record.value is not None]
    finally:
        await consumer.stop()


async def _refused(coro: Any) -> BaseException:
    with pytest.raises((KafkaError, OSError, TimeoutError)) as caught:
        await asyncio.wait_for(coro, 30)
    return caught.value


async def test_a_service_writes_its_own_topic_and_reads_those_it_consumes(
    secure_kafka: KafkaBroker, prefix: str
) -> None:
    bootstrap = secure_kafka.bootstrap
    await _send(bootstrap, _as(secure_kafka, "ledger"), f"{prefix}ledger")
    await _send(bootstrap, _as(secure_kafka, "ledger"), f"{prefix}ledger.dlt")
    # payments consumes the ledger's topic, in its own group
    seen = await _read(bootstrap, _as(secure_kafka, "payments"), f"{prefix}ledger", "payments")
    assert b"ReservationCaptured" in seen


async def test_a_service_cannot_write_another_services_topic(
    secure_kafka: KafkaBroker, prefix: str
) -> None:
    # whoever holds the catalogue's login still cannot tell payments that money was captured
    for user, topic in (
        ("catalogue", "ledger"),
        ("payments", "ledger"),
        ("accounts", "payments"),
        ("ledger", "accounts.dlt"),
        (AUDIT, "ledger"),
    ):
        login = _as(secure_kafka, user)
        error = await _refused(_send(secure_kafka.bootstrap, login, prefix + topic))
        assert "AuthorizationFailed" in repr(error), (user, topic, error)


async def test_a_service_reads_only_what_it_consumes_in_its_own_group(
    secure_kafka: KafkaBroker, prefix: str
) -> None:
    bootstrap = secure_kafka.bootstrap
    # the ledger does not read the catalogue, nor the catalogue the ledger
    for user, topic, group in (
        ("ledger", "catalogue", "ledger"),
        ("catalogue", "ledger", "catalogue"),
        ("payments", "ledger", "ledger"),  # someone else's consumer group
    ):
        error = await _refused(_read(bootstrap, _as(secure_kafka, user), prefix + topic, group))
        assert "AuthorizationFailed" in repr(error), (user, topic, error)


async def test_a_relay_reads_how_far_behind_its_topics_readers_are_and_no_more(
    secure_kafka: KafkaBroker, prefix: str
) -> None:
    bootstrap, ledger = secure_kafka.bootstrap, _as(secure_kafka, "ledger")
    await _send(bootstrap, ledger, f"{prefix}ledger")
    await _read(bootstrap, _as(secure_kafka, "payments"), f"{prefix}ledger", "payments")
    await _send(bootstrap, ledger, f"{prefix}ledger")  # one payments has not read
    bus = KafkaBus(bootstrap, security=ledger)
    await bus.start()
    try:
        # the ledger's relay holds its bulk rows back by what its readers left
        assert await bus.backlog(f"{prefix}ledger", ["payments"]) == 1
        # a group that does not read the ledger's topic is none of its business
        error = await _refused(bus.backlog(f"{prefix}ledger", ["catalogue"]))
        assert "AuthorizationFailed" in repr(error), error
    finally:
        await bus.stop()


@pytest.mark.postgres
async def test_a_relay_that_may_not_read_its_readers_offsets_publishes_without_the_bound(
    secure_kafka: KafkaBroker, prefix: str, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the catalogue does not read the ledger's topic: the ledger may not describe its group
    outbox = Outbox("ledger", topic=f"{prefix}ledger")
    bus = KafkaBus(secure_kafka.bootstrap, security=_as(secure_kafka, "ledger"))
    await bus.start()
    try:
        async with outbox_schema(db_url, "ledger", pool_size=2) as engine:
            async with transaction(make_sessionmaker(engine)) as s:
                for _ in range(30):
                    event = AccountSuspended(account_id=uuid.uuid4(), reason_code="other")
                    await outbox.add(s, [event], EventContext.new("test"), bulk=True)
            relay = Relay(
                outbox,
                make_sessionmaker(engine),
                bus,
                batch_size=10,
                readers=["catalogue"],
                max_bulk_lag=5,
            )
            with caplog.at_level(logging.WARNING, logger="shared.outbox"):
                assert await relay.drain() == 30  # an allocation is not stopped by it
    finally:
        await bus.stop()
    assert "cannot tell how far behind catalogue are" in caplog.text
    assert "GroupAuthorizationFailed" in caplog.text


async def test_nobody_writes_without_a_login(secure_kafka: KafkaBroker, prefix: str) -> None:
    bootstrap = secure_kafka.bootstrap
    secure = secure_kafka.secure
    assert secure is not None
    tls_only = KafkaSecurity(protocol="SSL", cafile=secure.cafile)
    wrong_password = replace(_as(secure_kafka, "payments"), password="guessed")
    unknown_user = replace(_as(secure_kafka, "payments"), username="mallory")
    for security in (PLAINTEXT, tls_only, wrong_password, unknown_user):
        for service in SERVICES:
            await _refused(_send(bootstrap, security, f"{prefix}{service}"))


async def test_the_client_verifies_the_broker(
    secure_kafka: KafkaBroker, prefix: str, tmp_path: Path
) -> None:
    # the right login, but a CA that did not sign the broker's certificate: no connection
    other_ca = make_ca(tmp_path, common_name="someone else")
    wrong_ca = replace(_as(secure_kafka, "ledger"), cafile=other_ca.cert)
    await _refused(_send(secure_kafka.bootstrap, wrong_ca, f"{prefix}ledger"))
    # the system's trust store does not know a private CA either
    no_ca = replace(_as(secure_kafka, "ledger"), cafile=None)
    await _refused(_send(secure_kafka.bootstrap, no_ca, f"{prefix}ledger"))
