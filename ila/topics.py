"""Create every service's topic and dead-letter topic on a Kafka cluster with their copies
and retention, before any service starts: the compose stack's one-shot ``topics`` job
(``python -m ila.topics``). The services' own start-up creates only what is missing, with
one copy (development); on a cluster the topics must exist first, three copies each.

Names, partitions and each topic's configuration come from the services' definitions
(``shared.service.topic_specs``: the ledger's kept forever, dead letters kept forever);
topics whose definition sets no retention keep events for ``--retention-ms``. It waits
until the cluster has ``--replication`` brokers (a topic cannot have more copies than
brokers), then creates what is missing and leaves existing topics alone.

Environment: ``ILA_KAFKA_BOOTSTRAP``, ``ILA_KAFKA_PARTITIONS``, ``ILA_KAFKA_TOPIC_PREFIX``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from shared.bus import set_topic_prefix
from shared.bus.topics import TopicSpec
from shared.settings import get_settings

ONE_YEAR_MS = 365 * 24 * 3600 * 1000


def specs(partitions: int, retention_ms: int, min_insync: int) -> list[TopicSpec]:
    from ila.registry import all_definitions
    from shared.service import topic_specs

    result = []
    for spec in topic_specs(all_definitions(), partitions):
        config = {"retention.ms": str(retention_ms), **spec.config}
        config["min.insync.replicas"] = str(min_insync)
        result.append(TopicSpec(spec.name, spec.partitions, config))
    return result


async def create(
    bootstrap: str, topics: list[TopicSpec], replication: int, wait: float
) -> list[str]:
    """Create the missing ``topics``; the names created."""
    deadline = time.monotonic() + wait
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            brokers = (await admin.describe_cluster())["brokers"]
            if len(brokers) >= replication:
                return await _create_missing(admin, topics, replication)
            reason = f"{len(brokers)} of {replication} brokers"
        except KafkaError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise SystemExit(f"Kafka at {bootstrap} not ready after {wait:.0f} s ({reason})")
        print(f"waiting for Kafka: {reason}", flush=True)
        await asyncio.sleep(2)


async def _create_missing(
    admin: AIOKafkaAdminClient, topics: list[TopicSpec], replication: int
) -> list[str]:
    existing = set(await admin.list_topics())
    missing = [t for t in topics if t.name not in existing]
    if not missing:
        return []
    response = await admin.create_topics(
        [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=replication,
                topic_configs=dict(t.config),
            )
            for t in missing
        ],
        timeout_ms=30_000,
    )
    for entry in getattr(response, "topic_errors", ()):
        code = int(entry[1])
        if code != 0 and for_code(code) is not TopicAlreadyExistsError:
            raise SystemExit(f"creating {entry[0]} failed: {for_code(code).__name__} {entry[2]}")
    return [t.name for t in missing]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ila.topics", description=__doc__)
    parser.add_argument("--replication", type=int, default=3)
    parser.add_argument("--min-insync", type=int, default=2)
    parser.add_argument("--retention-ms", type=int, default=ONE_YEAR_MS)
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait for Kafka")
    args = parser.parse_args(argv)
    settings = get_settings()
    if not settings.kafka_bootstrap:
        raise SystemExit("set ILA_KAFKA_BOOTSTRAP")
    set_topic_prefix(settings.kafka_topic_prefix)
    topics = specs(settings.kafka_partitions, args.retention_ms, args.min_insync)
    created = asyncio.run(create(settings.kafka_bootstrap, topics, args.replication, args.wait))
    for t in topics:
        state = "created" if t.name in created else "exists"
        copies = f"{args.replication} copies"
        print(f"{t.name}: {state}, {t.partitions} partitions, {copies}, {t.config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
