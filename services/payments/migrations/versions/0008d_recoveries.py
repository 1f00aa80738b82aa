"""Recoveries: what a provider owes back after the ledger reversed a capture it was paid
from, netted from its next payouts; and the claims stopped by such a reversal.

Revision ID: 0008d
"""

from alembic import op

revision = "0008d"
down_revision = "0007d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE payments.recoveries (
            recovery_id  uuid PRIMARY KEY,
            provider_id  text NOT NULL,
            claim_id     uuid NOT NULL UNIQUE REFERENCES payments.claims (claim_id),
            amount       bigint NOT NULL CHECK (amount > 0),
            status       text NOT NULL CHECK (status IN ('open', 'netting', 'netted')),
            payout_id    uuid REFERENCES payments.payouts (payout_id),
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL,
            CHECK ((status = 'open') = (payout_id IS NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX recoveries_open ON payments.recoveries (provider_id, created_at) "
        "WHERE status = 'open'"
    )
    op.execute("CREATE INDEX recoveries_payout ON payments.recoveries (payout_id)")


def downgrade() -> None:
    op.execute("DROP TABLE payments.recoveries")
