"""DDL of the tables every service keeps in its own schema: outbox, inbox, idempotency.

Each service's first migration calls :func:`kernel_tables`, so the tables live in (and
migrate with) the service that owns them.
"""

from __future__ import annotations


def kernel_tables(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"""CREATE TABLE {s}.outbox (
            id          bigserial PRIMARY KEY,
            event_id    uuid NOT NULL UNIQUE,
            topic       text NOT NULL,
            key         text NOT NULL,
            type        text NOT NULL,
            body        bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            sent_at     timestamptz
        )""",
        f"CREATE INDEX outbox_unsent ON {s}.outbox (id) WHERE sent_at IS NULL",
        # One row per event this service's consumer handled, written in the transaction of
        # its effect: a redelivered event finds its row and changes nothing.
        f"""CREATE TABLE {s}.inbox (
            event_id    uuid PRIMARY KEY,
            type        text NOT NULL,
            topic       text NOT NULL,
            outcome     text NOT NULL,
            error       text,
            handled_at  timestamptz NOT NULL DEFAULT now()
        )""",
        # The first response to each Idempotency-Key, stored with the effect it produced.
        f"""CREATE TABLE {s}.idempotency (
            scope         text NOT NULL,
            key           text NOT NULL,
            request_hash  text NOT NULL,
            status        integer NOT NULL,
            body          jsonb,
            headers       jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (scope, key)
        )""",
    ]
