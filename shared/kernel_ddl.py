"""DDL of the kernel's tables that a service keeps in its own schema: outbox, inbox and
idempotency (every service), approvals (the services that guard money with four eyes).

Each service's first migration calls :func:`kernel_tables` (and a later one
:func:`approvals_ddl` where it uses :class:`shared.approvals.FourEyes`), so the tables live
in (and migrate with) the service that owns them.
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


def approvals_ddl(schema: str) -> list[str]:
    """The proposals table of a service (its migration creates it in its own schema)."""
    s = f'"{schema}"'
    return [
        f"""CREATE TABLE {s}.approvals (
            approval_id   uuid PRIMARY KEY,
            action        text NOT NULL,
            subject       text NOT NULL,
            payload       jsonb NOT NULL,
            summary       jsonb NOT NULL,
            agency_id     text,
            provider_id   text,
            proposed_by   text NOT NULL,
            proposer_sub  text NOT NULL,
            proposed_at   timestamptz NOT NULL,
            expires_at    timestamptz NOT NULL,
            status        text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'approved', 'refused')),
            decided_by    text,
            decided_at    timestamptz,
            reason_code   text,
            result        jsonb
        )""",
        f"CREATE INDEX approvals_pending ON {s}.approvals (proposed_at) WHERE status = 'pending'",
        # at most one open proposal per action and subject: a second one would let two
        # approvers each approve "their" copy
        f"CREATE INDEX approvals_subject ON {s}.approvals (action, subject, status)",
    ]


def parked_ddl(schema: str) -> list[str]:
    """Events a consumer received but could not read as any type it knows (a newer version,
    a new type from an upgraded producer): kept whole, applied after an upgrade."""
    s = f'"{schema}"'
    return [
        f"""CREATE TABLE {s}.parked (
            event_id    uuid PRIMARY KEY,
            type        text NOT NULL,
            topic       text NOT NULL,
            key         text NOT NULL,
            body        bytea NOT NULL,
            reason      text NOT NULL,
            parked_at   timestamptz NOT NULL DEFAULT now()
        )""",
    ]


def dead_letters_ddl(schema: str) -> list[str]:
    """Messages a consumer gave up on (its handler kept failing, or it could not read the
    envelope), with their error: kept whole until an operator replays them after a fix
    (:mod:`shared.dead_letters`). A replay that fails again leaves the row open with the new
    error; one that applies closes it (``replayed``)."""
    s = f'"{schema}"'
    return [
        f"""CREATE TABLE {s}.dead_letters (
            dead_letter_id  uuid PRIMARY KEY,
            event_id        uuid,
            type            text,
            topic           text NOT NULL,
            key             text NOT NULL,
            body            bytea NOT NULL,
            error           text NOT NULL,
            failures        integer NOT NULL DEFAULT 1,
            status          text NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'replayed')),
            dead_at         timestamptz NOT NULL DEFAULT now(),
            replayed_at     timestamptz,
            replayed_by     text
        )""",
        f"CREATE INDEX dead_letters_open ON {s}.dead_letters (dead_at) WHERE status = 'open'",
        f"CREATE INDEX dead_letters_event ON {s}.dead_letters (event_id)",
    ]


def outbox_parking_ddl(schema: str) -> list[str]:
    """The relay's bookkeeping of rows it could not publish: how often it tried, the last
    error, and when it gave up on a row (parked: skipped, so later rows flow on)."""
    s = f'"{schema}"'
    return [
        f"ALTER TABLE {s}.outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0",
        f"ALTER TABLE {s}.outbox ADD COLUMN last_error text",
        f"ALTER TABLE {s}.outbox ADD COLUMN parked_at timestamptz",
        "DROP INDEX IF EXISTS " + f"{s}.outbox_unsent",
        f"CREATE INDEX outbox_unsent ON {s}.outbox (id) "
        "WHERE sent_at IS NULL AND parked_at IS NULL",
        f"CREATE INDEX outbox_parked ON {s}.outbox (id) WHERE parked_at IS NOT NULL",
    ]


def outbox_parking_downgrade(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"DROP INDEX {s}.outbox_parked",
        f"DROP INDEX {s}.outbox_unsent",
        f"ALTER TABLE {s}.outbox DROP COLUMN parked_at",
        f"ALTER TABLE {s}.outbox DROP COLUMN last_error",
        f"ALTER TABLE {s}.outbox DROP COLUMN attempts",
        f"CREATE INDEX outbox_unsent ON {s}.outbox (id) WHERE sent_at IS NULL",
    ]


def outbox_bulk_ddl(schema: str) -> list[str]:
    """Bulk rows (a yearly allocation's grants, an agency's imported accounts, the ledger's
    wallet openings) give way to the others: the relay publishes the unsent rows that are
    not bulk first, each after the unsent bulk rows of its key that precede it, then bulk
    rows in id order (:class:`shared.outbox.Relay`)."""
    s = f'"{schema}"'
    return [
        f"ALTER TABLE {s}.outbox ADD COLUMN bulk boolean NOT NULL DEFAULT false",
        f"CREATE INDEX outbox_unsent_interactive ON {s}.outbox (id) "
        "WHERE sent_at IS NULL AND parked_at IS NULL AND NOT bulk",
        f"CREATE INDEX outbox_unsent_bulk_keys ON {s}.outbox (key, id) "
        "WHERE sent_at IS NULL AND parked_at IS NULL AND bulk",
    ]


def outbox_bulk_downgrade(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"DROP INDEX {s}.outbox_unsent_bulk_keys",
        f"DROP INDEX {s}.outbox_unsent_interactive",
        f"ALTER TABLE {s}.outbox DROP COLUMN bulk",
    ]


def outbox_channel(schema: str) -> str:
    """The PostgreSQL channel a service's outbox announces new rows on."""
    return f"{schema}_outbox"


def outbox_notify_ddl(schema: str) -> list[str]:
    """The statement-level trigger that announced committed outbox rows on the service's
    channel, as the migrations before the ``*an_outbox_announced`` revisions created it.
    Those revisions drop it: a ``pg_notify`` inside the writing transaction serialised every
    writer's commit; writers now announce after their commit (``shared.listen.announce``)."""
    s = f'"{schema}"'
    return [
        f"""CREATE FUNCTION {s}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('{outbox_channel(schema)}', ''); RETURN NULL; END $$""",
        f"CREATE TRIGGER outbox_notify AFTER INSERT ON {s}.outbox "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.outbox_notify()",
    ]


def outbox_notify_downgrade(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"DROP TRIGGER outbox_notify ON {s}.outbox",
        f"DROP FUNCTION {s}.outbox_notify()",
    ]


def mail_ddl(schema: str) -> list[str]:
    """The messages a service sends (:mod:`shared.mail`): one row per fact (``fact_key``
    unique, so a fact told twice queues one message), the person it is for (``person``: an
    account or provider id, so an erasure finds their rows), and its sending state. Once a
    person's data are erased, their rows keep only the key, kind and state."""
    s = f'"{schema}"'
    return [
        f"""CREATE TABLE {s}.outgoing_mail (
            message_id       uuid PRIMARY KEY,
            fact_key         text NOT NULL UNIQUE,
            kind             text NOT NULL,
            person           text NOT NULL,
            recipient        text,
            language         text NOT NULL DEFAULT 'en',
            subject          text,
            body             text,
            status           text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'sent', 'erased')),
            attempts         integer NOT NULL DEFAULT 0,
            last_error       text,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            created_at       timestamptz NOT NULL DEFAULT now(),
            sent_at          timestamptz
        )""",
        f"CREATE INDEX outgoing_mail_due ON {s}.outgoing_mail (next_attempt_at) "
        "WHERE status = 'pending'",
        f"CREATE INDEX outgoing_mail_person ON {s}.outgoing_mail (person)",
    ]
