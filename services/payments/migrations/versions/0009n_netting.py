"""Recoveries netted by payout runs: what is left to recover of each recovery
(``outstanding``), which payout recovered how much of it (``recovery_nettings``), and what a
payout or run recovered besides the transfer it makes (``recovered``). A payout netted in
full transfers nothing (``amount`` may be 0).

Revision ID: 0009n
"""

from alembic import op

revision = "0009n"
down_revision = "0008d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nothing netted a recovery before this revision: each is still owed in full
    op.execute("ALTER TABLE payments.recoveries DROP CONSTRAINT recoveries_check")
    op.execute("DROP INDEX payments.recoveries_payout")
    op.execute("ALTER TABLE payments.recoveries DROP COLUMN payout_id")
    op.execute("ALTER TABLE payments.recoveries ADD COLUMN outstanding bigint")
    op.execute("UPDATE payments.recoveries SET outstanding = amount, status = 'open'")
    op.execute(
        """
        ALTER TABLE payments.recoveries
            ALTER COLUMN outstanding SET NOT NULL,
            ADD CONSTRAINT recoveries_outstanding
                CHECK (outstanding >= 0 AND outstanding <= amount),
            ADD CONSTRAINT recoveries_open_outstanding CHECK ((status = 'open') = (outstanding > 0))
        """
    )
    op.execute(
        """
        CREATE TABLE payments.recovery_nettings (
            recovery_id  uuid NOT NULL REFERENCES payments.recoveries (recovery_id),
            payout_id    uuid NOT NULL REFERENCES payments.payouts (payout_id),
            claim_id     uuid NOT NULL,
            amount       bigint NOT NULL CHECK (amount > 0),
            live         boolean NOT NULL DEFAULT true,
            created_at   timestamptz NOT NULL,
            PRIMARY KEY (recovery_id, payout_id)
        )
        """
    )
    op.execute("CREATE INDEX recovery_nettings_payout ON payments.recovery_nettings (payout_id)")
    op.execute(
        """
        ALTER TABLE payments.payouts
            DROP CONSTRAINT payouts_amount_check,
            ADD CONSTRAINT payouts_amount_check CHECK (amount >= 0),
            ADD COLUMN recovered bigint NOT NULL DEFAULT 0 CHECK (recovered >= 0),
            ADD CONSTRAINT payouts_pays_or_recovers CHECK (amount + recovered > 0)
        """
    )
    op.execute(
        "ALTER TABLE payments.payout_runs "
        "ADD COLUMN recovered bigint NOT NULL DEFAULT 0 CHECK (recovered >= 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE payments.payout_runs DROP COLUMN recovered")
    op.execute(
        """
        ALTER TABLE payments.payouts
            DROP CONSTRAINT payouts_pays_or_recovers,
            DROP COLUMN recovered,
            DROP CONSTRAINT payouts_amount_check,
            ADD CONSTRAINT payouts_amount_check CHECK (amount > 0)
        """
    )
    op.execute("DROP TABLE payments.recovery_nettings")
    op.execute(
        """
        ALTER TABLE payments.recoveries
            DROP CONSTRAINT recoveries_open_outstanding,
            DROP CONSTRAINT recoveries_outstanding,
            DROP COLUMN outstanding,
            ADD COLUMN payout_id uuid REFERENCES payments.payouts (payout_id)
        """
    )
    op.execute("UPDATE payments.recoveries SET status = 'open'")
    op.execute("CREATE INDEX recoveries_payout ON payments.recoveries (payout_id)")
    op.execute(
        "ALTER TABLE payments.recoveries "
        "ADD CONSTRAINT recoveries_check CHECK ((status = 'open') = (payout_id IS NULL))"
    )
