"""The ledger: the append-only event store, its projections, policies and allocations.

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APP_ROLE = "ila_ledger_app"


def upgrade() -> None:
    for ddl in kernel_tables("ledger"):
        op.execute(ddl)
    op.execute("CREATE SEQUENCE ledger.events_position_seq")
    op.execute(
        """
        CREATE TABLE ledger.events (
            position        bigint PRIMARY KEY DEFAULT nextval('ledger.events_position_seq'),
            event_id        uuid NOT NULL UNIQUE,
            stream_id       uuid NOT NULL,
            version         integer NOT NULL CHECK (version >= 1),
            type            text NOT NULL,
            schema_version  integer NOT NULL,
            data            jsonb NOT NULL,
            metadata        jsonb NOT NULL,
            recorded_at     timestamptz NOT NULL,
            prev_hash       text NOT NULL,
            hash            text NOT NULL,
            UNIQUE (stream_id, version)
        )
        """
    )
    # The store is append-only: the database itself refuses any change to a recorded event.
    op.execute(
        """
        CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger.events is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ledger.events "
        "FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ledger.events "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change()"
    )
    # Projections: rebuilt from the events at any time; written with each append.
    op.execute(
        """
        CREATE TABLE ledger.wallets (
            account_id      uuid PRIMARY KEY,
            status          text NOT NULL,
            profile         jsonb,
            version         integer NOT NULL,
            head_hash       text NOT NULL,
            available       bigint NOT NULL CHECK (available >= 0),
            reserved        bigint NOT NULL CHECK (reserved >= 0),
            granted_total   bigint NOT NULL,
            spent_total     bigint NOT NULL,
            expired_total   bigint NOT NULL,
            years_granted   integer[] NOT NULL DEFAULT '{}',
            updated_at      timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ledger.lots (
            lot_id          uuid PRIMARY KEY,
            account_id      uuid NOT NULL,
            funder_id       text NOT NULL,
            kind            text NOT NULL,
            year            integer,
            amount          bigint NOT NULL,
            remaining       bigint NOT NULL CHECK (remaining >= 0),
            reserved        bigint NOT NULL CHECK (reserved >= 0),
            spent           bigint NOT NULL,
            expired         bigint NOT NULL,
            expires_at      timestamptz,
            earmark         jsonb,
            reason          text NOT NULL,
            granted_at      timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX lots_account ON ledger.lots (account_id)")
    # a second statutory grant for the same year is impossible, whatever the code does
    op.execute(
        "CREATE UNIQUE INDEX lots_statutory_once ON ledger.lots (account_id, year) "
        "WHERE kind = 'statutory'"
    )
    op.execute(
        "CREATE INDEX lots_expiring ON ledger.lots (expires_at) "
        "WHERE remaining > 0 AND expires_at IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE ledger.reservations (
            reservation_id  uuid PRIMARY KEY,
            account_id      uuid NOT NULL,
            enrolment_id    uuid NOT NULL,
            amount          bigint NOT NULL,
            captured        bigint NOT NULL,
            released        bigint NOT NULL,
            status          text NOT NULL,
            expires_at      timestamptz NOT NULL,
            allocations     jsonb NOT NULL,
            reserved_at     timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX reservations_account ON ledger.reservations (account_id)")
    op.execute(
        "CREATE INDEX reservations_expiring ON ledger.reservations (expires_at) "
        "WHERE status = 'active'"
    )
    op.execute(
        """
        CREATE TABLE ledger.policies (
            year        integer PRIMARY KEY,
            policy      jsonb NOT NULL,
            updated_by  text NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ledger.allocations (
            allocation_id   uuid PRIMARY KEY,
            year            integer NOT NULL,
            status          text NOT NULL,
            requested_by    text NOT NULL,
            total_accounts  integer NOT NULL DEFAULT 0,
            processed       integer NOT NULL DEFAULT 0,
            granted_count   integer NOT NULL DEFAULT 0,
            granted_amount  bigint NOT NULL DEFAULT 0,
            skipped         integer NOT NULL DEFAULT 0,
            cursor          uuid,
            error           text,
            started_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            finished_at     timestamptz
        )
        """
    )
    # Which agency manages each account (fed by accounts events; used for authorization).
    op.execute(
        """
        CREATE TABLE ledger.account_agencies (
            account_id  uuid PRIMARY KEY,
            agency_id   text NOT NULL
        )
        """
    )
    # The service's own role may read and append events, never change them.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA ledger TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ledger TO {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON ledger.events FROM {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ledger TO {APP_ROLE}")
