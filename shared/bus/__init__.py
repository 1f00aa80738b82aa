"""One bus interface, two transports: Apache Kafka (aiokafka) and in-process.

Producers hand the bus batches of :class:`Message`; consumers register a batch handler
per consumer group. The handler owns exactly-once effects (inbox + one transaction);
the transport only promises at-least-once delivery and per-key order.
"""

from shared.bus.base import (
    TYPE_HEADER,
    BatchHandler,
    Bus,
    Message,
    dlt_topic,
    set_topic_prefix,
    topic_for,
    type_hint,
)

__all__ = [
    "TYPE_HEADER",
    "BatchHandler",
    "Bus",
    "Message",
    "dlt_topic",
    "set_topic_prefix",
    "topic_for",
    "type_hint",
]
