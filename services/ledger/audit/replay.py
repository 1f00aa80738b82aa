"""Rebuild every balance from the ledger's Kafka topic alone, for auditors.

A throw-away consumer group reads the topic from the beginning up to the end offsets seen
at the start, drops duplicates (the outbox relay delivers at least once) by event id, and
folds each account's events in order. Nothing here touches the ledger's database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ledger.domain import WalletState, evolve
from shared.bus import topic_for
from shared.bus.security import PLAINTEXT, KafkaSecurity
from shared.events import Envelope
from shared.events.ledger import LedgerEvent


@dataclass
class Replay:
    states: dict[uuid.UUID, WalletState] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


async def replay_topic(
    bootstrap: str,
    *,
    topic: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> Replay:
    topic = topic or topic_for("ledger")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"ila-audit-replay-{uuid.uuid4()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    await consumer.start()
    result = Replay()
    seen: set[uuid.UUID] = set()
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end.values())
        remaining = {tp for tp in partitions if end[tp] > 0}
        done = 0
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue
                    done += 1
                    _apply(result, seen, record.value)
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if progress is not None:
                progress(done, total)
    finally:
        await consumer.stop()
    return result


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _apply(result: Replay, seen: set[uuid.UUID], raw: bytes) -> None:
    try:
        envelope = Envelope.from_bytes(raw)
        if envelope.id in seen:
            result.duplicates += 1
            return
        seen.add(envelope.id)
        event = envelope.payload()
        if not isinstance(event, LedgerEvent):
            return  # not a wallet fact (a four-eyes proposal or decision)
        result.states[event.account_id] = evolve(
            result.states.get(event.account_id, WalletState()), event
        )
        result.events += 1
    except Exception as exc:  # reported, not fatal: an auditor wants every finding
        result.errors.append(f"{type(exc).__name__}: {exc}")
