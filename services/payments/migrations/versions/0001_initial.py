"""The payments schema: read models fed by other services' events, enrolments, reservations,
claims, payees, payout runs and payouts (plus the kernel tables).

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = [
    # --- read models (rebuilt from events; never written by the API) ---
    """
    CREATE TABLE payments.accounts (
        account_id          uuid PRIMARY KEY,
        agency_id           text NOT NULL,
        status              text NOT NULL,
        employment_status   text NOT NULL,
        need_flags          text[] NOT NULL DEFAULT '{}',
        updated_at          timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE payments.providers (
        provider_id     text PRIMARY KEY,
        name            text NOT NULL DEFAULT '',
        status          text NOT NULL,
        qa_valid_until  date,
        updated_at      timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE payments.courses (
        course_id       uuid PRIMARY KEY,
        provider_id     text NOT NULL,
        version         integer NOT NULL,
        status          text NOT NULL,
        title           text NOT NULL DEFAULT '',
        price           bigint NOT NULL CHECK (price >= 0),
        isced_field     text,
        eqf_level       integer,
        tags            text[] NOT NULL DEFAULT '{}',
        updated_at      timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE payments.sessions (
        session_id      uuid PRIMARY KEY,
        course_id       uuid NOT NULL,
        starts_on       date NOT NULL,
        ends_on         date NOT NULL,
        seats           integer NOT NULL CHECK (seats >= 0),
        withdrawn       boolean NOT NULL DEFAULT false
    )
    """,
    "CREATE INDEX sessions_course ON payments.sessions (course_id)",
    # top-up lots, for the participation-fee exemption (an earmarked top-up that covers it)
    """
    CREATE TABLE payments.lots (
        lot_id          uuid PRIMARY KEY,
        account_id      uuid NOT NULL,
        kind            text NOT NULL,
        funder_id       text NOT NULL,
        amount          bigint NOT NULL,
        earmark         jsonb,
        expires_at      timestamptz,
        revoked         boolean NOT NULL DEFAULT false
    )
    """,
    "CREATE INDEX lots_account ON payments.lots (account_id)",
    # --- the payments service's own state ---
    """
    CREATE TABLE payments.enrolments (
        enrolment_id        uuid PRIMARY KEY,
        account_id          uuid NOT NULL,
        provider_id         text NOT NULL,
        course_id           uuid NOT NULL,
        course_version      integer NOT NULL,
        session_id          uuid NOT NULL,
        starts_on           date NOT NULL,
        ends_on             date NOT NULL,
        price               bigint NOT NULL,
        status              text NOT NULL,
        reason              text,
        participation_fee   bigint NOT NULL DEFAULT 0,
        fee_exemption       text,
        requested           bigint NOT NULL DEFAULT 0,
        covered             bigint NOT NULL DEFAULT 0,
        co_payment          bigint NOT NULL DEFAULT 0,
        available_at_rejection bigint,
        accept_co_payment   boolean NOT NULL DEFAULT false,
        reservation_id      uuid,
        captured            bigint NOT NULL DEFAULT 0,
        released            bigint NOT NULL DEFAULT 0,
        hold_reason         text,
        cancelled_by        text,
        cancellation        text,
        proposed_by         text NOT NULL,
        proposed_at         timestamptz NOT NULL,
        expires_at          timestamptz,
        confirmed_at        timestamptz,
        decided_at          timestamptz,
        cancelled_at        timestamptz,
        updated_at          timestamptz NOT NULL
    )
    """,
    "CREATE INDEX enrolments_provider ON payments.enrolments (provider_id, proposed_at)",
    "CREATE INDEX enrolments_account ON payments.enrolments (account_id)",
    "CREATE INDEX enrolments_session ON payments.enrolments (session_id)",
    """
    CREATE INDEX enrolments_expiring ON payments.enrolments (expires_at)
    WHERE status IN ('awaiting_learner_confirmation', 'awaiting_co_payment')
    """,
    """
    CREATE TABLE payments.reservations (
        reservation_id  uuid PRIMARY KEY,
        enrolment_id    uuid NOT NULL REFERENCES payments.enrolments,
        account_id      uuid NOT NULL,
        requested       bigint NOT NULL,
        up_to           boolean NOT NULL,
        amount          bigint NOT NULL DEFAULT 0,
        captured        bigint NOT NULL DEFAULT 0,
        released        bigint NOT NULL DEFAULT 0,
        status          text NOT NULL,
        reason          text,
        requested_at    timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL
    )
    """,
    "CREATE INDEX reservations_enrolment ON payments.reservations (enrolment_id)",
    """
    CREATE TABLE payments.claims (
        claim_id            uuid PRIMARY KEY,
        enrolment_id        uuid NOT NULL,
        provider_id         text NOT NULL,
        account_id          uuid,
        milestone           text NOT NULL,
        completion_rate     integer,
        evidence            jsonb NOT NULL,
        status              text NOT NULL,
        reason              text,
        hold_reason         text,
        held_from           text,
        amount              bigint NOT NULL DEFAULT 0,
        captured            bigint NOT NULL DEFAULT 0,
        reservation_id      uuid,
        capture_requested   boolean NOT NULL DEFAULT false,
        payout_id           uuid,
        claimed_by          text NOT NULL,
        claimed_at          timestamptz NOT NULL,
        decided_at          timestamptz,
        captured_at         timestamptz,
        paid_at             timestamptz,
        updated_at          timestamptz NOT NULL
    )
    """,
    # one live claim per enrolment and milestone, whatever the concurrency
    """
    CREATE UNIQUE INDEX claims_once ON payments.claims (enrolment_id, milestone)
    WHERE status <> 'rejected'
    """,
    "CREATE INDEX claims_provider ON payments.claims (provider_id, claimed_at)",
    "CREATE INDEX claims_payable ON payments.claims (provider_id) WHERE status = 'captured'",
    "CREATE INDEX claims_reservation ON payments.claims (reservation_id)",
    """
    CREATE TABLE payments.payees (
        provider_id     text PRIMARY KEY,
        name            text NOT NULL,
        iban            text NOT NULL,
        bic             text,
        updated_by      text NOT NULL,
        updated_at      timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE payments.payout_runs (
        run_id          uuid PRIMARY KEY,
        requested_by    text NOT NULL,
        execution_date  date NOT NULL,
        payouts         integer NOT NULL,
        claims          integer NOT NULL,
        total           bigint NOT NULL,
        skipped         jsonb NOT NULL DEFAULT '[]'::jsonb,
        created_at      timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE payments.payouts (
        payout_id       uuid PRIMARY KEY,
        run_id          uuid NOT NULL REFERENCES payments.payout_runs,
        provider_id     text NOT NULL,
        status          text NOT NULL,
        amount          bigint NOT NULL CHECK (amount > 0),
        currency        text NOT NULL,
        creditor_name   text NOT NULL,
        iban            text NOT NULL,
        bic             text,
        execution_date  date NOT NULL,
        failure_reason  text,
        created_at      timestamptz NOT NULL,
        settled_at      timestamptz,
        failed_at       timestamptz
    )
    """,
    "CREATE INDEX payouts_provider ON payments.payouts (provider_id, created_at)",
    """
    CREATE TABLE payments.payout_lines (
        payout_id       uuid NOT NULL REFERENCES payments.payouts,
        claim_id        uuid NOT NULL REFERENCES payments.claims,
        enrolment_id    uuid NOT NULL,
        milestone       text NOT NULL,
        amount          bigint NOT NULL CHECK (amount > 0),
        PRIMARY KEY (payout_id, claim_id)
    )
    """,
]


def upgrade() -> None:
    for ddl in kernel_tables("payments"):
        op.execute(ddl)
    for ddl in TABLES:
        op.execute(ddl)
