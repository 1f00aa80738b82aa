"""Read models for scope and for paid-for-training-given: which agency manages each account
(from the accounts events) and which enrolments hold a seat in each session (from the
payments events).

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalogue.accounts (
            account_id  uuid PRIMARY KEY,
            agency_id   text NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE catalogue.session_enrolments (
            enrolment_id  uuid PRIMARY KEY,
            course_id     uuid NOT NULL,
            session_id    uuid NOT NULL,
            live          boolean NOT NULL,
            updated_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX session_enrolments_live ON catalogue.session_enrolments "
        "(course_id, session_id) WHERE live"
    )


def downgrade() -> None:
    op.execute("DROP TABLE catalogue.session_enrolments")
    op.execute("DROP TABLE catalogue.accounts")
