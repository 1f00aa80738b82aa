"""The Kafka topics the services need, created before they produce or consume.

Each service publishes on one topic (``topic_for(service)``) and parks what it cannot
handle on a dead-letter topic; :func:`ensure_topics` creates those that are missing with
their configuration and waits until every partition has a leader. Used by
``shared.service`` when the bus is Kafka, and by the tests and tools that set up a broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.bus.security import PLAINTEXT, KafkaSecurity

# The topics each service consumes (EventConsumer.on in services/<svc>/consumers.py);
# tests/unit/test_transport_settings.py fails when this and the code disagree. Each
# service's consumer group is named like the service.
READS: dict[str, tuple[str, ...]] = {
    "accounts": ("catalogue", "ledger", "payments"),
    "ledger": ("accounts", "payments"),
    "catalogue": ("accounts", "payments"),
    "payments": ("accounts", "catalogue", "ledger"),
}


def readers(service: str) -> tuple[str, ...]:
    """The consumer groups that read ``service``'s topic."""
    return tuple(sorted(group for group, sources in READS.items() if service in sources))


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[TopicSpec],
    within: float = 30.0,
    *,
    security: KafkaSecurity = PLAINTEXT,
    awaited: Sequence[str] = (),
    replication_factor: int = 1,
) -> None:
    """Create the topics that do not exist yet (``replication_factor`` copies of each
    partition: 1 on a development broker, 3 on a cluster); leave others alone.

    ``within`` bounds each admin request and the wait for leaders, in seconds. Returns once
    every topic, and every topic named in ``awaited`` (created by someone else: with ACLs a
    service's principal may create only its own topics), has a leader for each partition,
    so producing or consuming right after does not race the metadata propagation from the
    controller to the broker.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(within * 1000),
        **security.client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    name=topic.name,
                    num_partitions=topic.partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(topic.config),
                )
                for topic in missing
            ]
            try:
                response = await admin.create_topics(new_topics, timeout_ms=int(within * 1000))
            except TopicAlreadyExistsError:
                response = None  # created concurrently by another service: fine
            # aiokafka returns per-topic error codes instead of raising them.
            for entry in getattr(response, "topic_errors", ()):
                name, code = str(entry[0]), int(entry[1])
                message = str(entry[2]) if len(entry) > 2 and entry[2] else ""
                if code == 0 or for_code(code) is TopicAlreadyExistsError:
                    continue
                error = for_code(code)
                raise RuntimeError(
                    f"creating Kafka topic {name!r} failed: {error.__name__} {message}"
                )
        names = [topic.name for topic in topics]
        names += [name for name in awaited if name not in names]
        await _wait_for_leaders(admin, names, within)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, names: list[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(names)
        pending = [
            str(topic["topic"])
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(partition["leader"] < 0 for partition in topic["partitions"])
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topics without a leader after {seconds:.0f} s: {pending}")
        await asyncio.sleep(0.1)
