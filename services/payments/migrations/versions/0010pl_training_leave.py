"""Paid training leave: leave requests (the employer's decision, its note kept only here,
and the wage compensation claimed), the funders payments knows of (from the ledger's
``FunderRegistered``), and each course's workload in hours (bounding the hours of leave).

Revision ID: 0010pl
"""

from alembic import op

revision = "0010pl"
down_revision = ("0009a", "0009l", "0009n")
branch_labels = None
depends_on = None

STATUSES = "'requested', 'approved', 'refused', 'lapsed', 'compensation_claimed', 'compensated'"
LIVE = "'requested', 'approved', 'compensation_claimed', 'compensated'"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE payments.funders (
            funder_id      text PRIMARY KEY,
            kind           text NOT NULL,
            registered_at  timestamptz NOT NULL
        )
        """
    )
    op.execute("ALTER TABLE payments.courses ADD COLUMN workload_hours integer")
    op.execute(
        f"""
        CREATE TABLE payments.leave_requests (
            request_id            uuid PRIMARY KEY,
            enrolment_id          uuid NOT NULL REFERENCES payments.enrolments,
            account_id            uuid NOT NULL,
            employer_funder_id    text NOT NULL,
            hours                 integer NOT NULL CHECK (hours > 0),
            dates                 date[] NOT NULL CHECK (cardinality(dates) > 0),
            status                text NOT NULL CHECK (status IN ({STATUSES})),
            decide_by             timestamptz NOT NULL,
            requested_by          text NOT NULL,
            requested_at          timestamptz NOT NULL,
            updated_at            timestamptz NOT NULL,
            reason_code           text,
            note                  text,
            decided_by            text,
            decided_at            timestamptz,
            claim_id              uuid REFERENCES payments.claims (claim_id),
            compensation          bigint NOT NULL DEFAULT 0 CHECK (compensation >= 0),
            compensation_refused  text,
            compensated_at        timestamptz
        )
        """
    )
    # one standing request per enrolment, whatever the concurrency
    op.execute(
        "CREATE UNIQUE INDEX leave_requests_live ON payments.leave_requests (enrolment_id) "
        f"WHERE status IN ({LIVE})"
    )
    op.execute(
        "CREATE INDEX leave_requests_due ON payments.leave_requests (decide_by) "
        "WHERE status = 'requested'"
    )
    op.execute(
        "CREATE INDEX leave_requests_employer ON payments.leave_requests "
        "(employer_funder_id, requested_at)"
    )
    op.execute("CREATE INDEX leave_requests_claim ON payments.leave_requests (claim_id)")


def downgrade() -> None:
    op.execute("DROP TABLE payments.leave_requests")
    op.execute("ALTER TABLE payments.courses DROP COLUMN workload_hours")
    op.execute("DROP TABLE payments.funders")
