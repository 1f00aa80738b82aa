"""Prometheus metrics every service exposes on ``/metrics`` (label ``service``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "ila_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ila_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("ila_outbox_backlog", "Outbox rows not yet published", ["service"])
DB_POOL = Gauge(
    "ila_db_pool_connections",
    "Connections of a service's pool, in use or idle (services sharing a database share one)",
    ["service", "state"],
)
DB_POOL_SIZE = Gauge("ila_db_pool_size", "Connections a service's pool keeps", ["service"])
DB_DISCARDED = Counter(
    "ila_db_connections_discarded_total",
    "Pooled connections closed at checkout because they were still inside a transaction "
    "(a unit of work cancelled before its BEGIN was answered)",
)
CONSUMER_LAG = Gauge("ila_consumer_lag", "Messages not yet consumed", ["group"])
CONSUMER_RESTARTS = Counter(
    "ila_consumer_restarts_total", "Consumer loops restarted after they stopped", ["group"]
)
RELAY_RESTARTS = Counter(
    "ila_relay_restarts_total", "Outbox relays restarted after they stopped", ["service"]
)
EVENTS_OUT = Counter("ila_events_published_total", "Events published", ["service", "type"])
EVENTS_IN = Counter("ila_events_consumed_total", "Events consumed", ["service", "type", "outcome"])
DEAD_LETTERS = Counter(
    "ila_dead_letters_total", "Messages sent to a dead-letter topic", ["service"]
)
OUTBOX_PARKED = Counter(
    "ila_outbox_parked_total",
    "Outbox rows the relay gave up on (too large, or refused by the bus too often)",
    ["service"],
)
OUTBOX_BULK_BEHIND = Gauge(
    "ila_outbox_bulk_behind",
    "Events of a service's topic its furthest-behind reader has not committed, as its relay "
    "last measured them while bulk rows were flowing (it holds them back past the bound)",
    ["service"],
)
OUTBOX_PARKED_NOW = Gauge(
    "ila_outbox_parked_rows", "Outbox rows parked and not yet resolved by an operator", ["service"]
)
