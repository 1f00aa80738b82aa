"""Messages to learners: the outgoing messages (one per fact), each learner's choices of
messages and language, and what the accounts service learns from the other services'
events to tell them: the proposals waiting for consent (until answered) and the credit lots
with an expiry date (what is left of each).

Revision ID: 0005m
"""

from alembic import op

from shared.kernel_ddl import mail_ddl

revision = "0005m"
down_revision = "0004l"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in mail_ddl("accounts"):
        op.execute(statement)
    op.execute(
        """
        CREATE TABLE accounts.message_preferences (
            account_id        uuid PRIMARY KEY REFERENCES accounts.accounts (account_id),
            language          text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'fr', 'de')),
            consent_reminder  boolean NOT NULL DEFAULT true,
            credit_expiry     boolean NOT NULL DEFAULT true,
            credential_issued boolean NOT NULL DEFAULT true,
            updated_at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE accounts.proposals (
            enrolment_id  uuid PRIMARY KEY,
            account_id    uuid NOT NULL,
            provider_id   text NOT NULL,
            starts_on     date NOT NULL,
            ends_on       date NOT NULL,
            price         bigint NOT NULL,
            co_payment    bigint NOT NULL,
            expires_at    timestamptz NOT NULL,
            answered      boolean NOT NULL DEFAULT false
        )
        """
    )
    op.execute(
        "CREATE INDEX proposals_waiting ON accounts.proposals (expires_at) WHERE NOT answered"
    )
    # what the ledger holds of each lot that expires: remaining (reserved part included) and
    # reserved, moved by the ledger's events as the ledger's wallet moves them
    op.execute(
        """
        CREATE TABLE accounts.credit_lots (
            lot_id      uuid PRIMARY KEY,
            account_id  uuid NOT NULL,
            funder_id   text NOT NULL,
            granted     bigint NOT NULL,
            remaining   bigint NOT NULL,
            reserved    bigint NOT NULL DEFAULT 0,
            expires_at  timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX credit_lots_expiry ON accounts.credit_lots (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE accounts.credit_lots")
    op.execute("DROP TABLE accounts.proposals")
    op.execute("DROP TABLE accounts.message_preferences")
    op.execute("DROP TABLE accounts.outgoing_mail")
