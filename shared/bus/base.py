"""The transport-independent part of the bus."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

_topic_prefix = "ila."


def set_topic_prefix(prefix: str) -> None:
    """Set once at start-up (``ILA_KAFKA_TOPIC_PREFIX``): several deployments, or test
    runs, can share one Kafka cluster without seeing each other's events."""
    global _topic_prefix
    _topic_prefix = prefix


def topic_for(service: str) -> str:
    """The topic a service publishes its events on."""
    return f"{_topic_prefix}{service}"


def dlt_topic(group: str) -> str:
    """Where a consumer group parks the messages it gave up on."""
    return f"{_topic_prefix}{group}.dlt"


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    partition: int | None = None
    offset: int | None = None


TYPE_HEADER = "ce_type"
"""The header the relay sets to the event's CloudEvents type (as the CloudEvents Kafka
binding names it), beside the structured envelope in the value: a consumer skips an event
it does not react to without reading the envelope."""


def type_hint(message: Message) -> str | None:
    """The event type the message's :data:`TYPE_HEADER` names, if it has one."""
    for name, value in message.headers:
        if name == TYPE_HEADER:
            return value.decode(errors="replace")
    return None


BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]


class Bus(ABC):
    """Publish batches; deliver batches to one handler per consumer group."""

    def __init__(self) -> None:
        self.subscriptions: list[tuple[str, tuple[str, ...], BatchHandler]] = []
        self.fetch_waits: dict[str, int] = {}

    def subscribe(
        self, group: str, topics: Sequence[str], handler: BatchHandler, *, fetch_wait_ms: int = 0
    ) -> None:
        """Register before :meth:`start`. ``fetch_wait_ms``: how long the transport may hold
        a fetch back to deliver more in one batch (0: deliver what is there at once), for a
        group no one waits on event by event."""
        self.subscriptions.append((group, tuple(topics), handler))
        if fetch_wait_ms:
            self.fetch_waits[group] = fetch_wait_ms

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def publish(self, messages: Sequence[Message]) -> None:
        """Return only once every message is durably accepted (at-least-once)."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the transport is reachable (readiness)."""

    def down(self) -> list[str]:
        """Consumer groups whose loop is not running (readiness)."""
        return []

    async def lag(self) -> dict[str, int]:
        """Messages not yet consumed, per consumer group (best effort)."""
        return {}

    async def backlog(self, topic: str, groups: Sequence[str]) -> int | None:
        """How many of ``topic``'s messages the furthest behind of ``groups`` has not yet
        committed, wherever its consumers run; None when the transport holds no backlog (in
        process, a published message is applied before ``publish`` returns)."""
        return None
