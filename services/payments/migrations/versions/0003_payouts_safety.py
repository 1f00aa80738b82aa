"""Payout safety: the registering agency of each provider (scope), the history and cooling-off
of payee bank details, payout runs released by a second person, and a claim in at most one
live payout (enforced by a partial unique index).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = [
    # the agency that registered the provider (catalogue.ProviderRegistered): it, and only
    # it among agencies, sees the provider's payouts and payee and proposes its bank details
    "ALTER TABLE payments.providers ADD COLUMN agency_id text",
    "CREATE INDEX providers_agency ON payments.providers (agency_id)",
    # where the current bank details came from ('registration' or an approved 'change'),
    # since when they apply, and whether finance verified them with the bank
    "ALTER TABLE payments.payees ADD COLUMN source text NOT NULL DEFAULT 'registration'",
    "ALTER TABLE payments.payees ADD COLUMN effective_at timestamptz",
    "UPDATE payments.payees SET effective_at = updated_at",
    "ALTER TABLE payments.payees ALTER COLUMN effective_at SET NOT NULL",
    "ALTER TABLE payments.payees ADD COLUMN verified_at timestamptz",
    "ALTER TABLE payments.payees ADD COLUMN verified_by text",
    # runs are assembled, then released by a second person (or refused, or left to expire)
    "ALTER TABLE payments.payout_runs ADD COLUMN status text NOT NULL DEFAULT 'released'",
    "ALTER TABLE payments.payout_runs ADD COLUMN agency_id text",
    "ALTER TABLE payments.payout_runs ADD COLUMN approval_id uuid",
    "ALTER TABLE payments.payout_runs ADD COLUMN decided_at timestamptz",
    """
    ALTER TABLE payments.payout_runs ADD CONSTRAINT payout_runs_status
    CHECK (status IN ('empty', 'proposed', 'released', 'refused', 'expired'))
    """,
    "ALTER TABLE payments.payouts ADD COLUMN agency_id text",
    "ALTER TABLE payments.payouts ADD COLUMN cancel_reason text",
    """
    ALTER TABLE payments.payouts ADD CONSTRAINT payouts_status
    CHECK (status IN ('proposed', 'sent', 'settled', 'failed', 'cancelled'))
    """,
    # a remittance line is live unless its payout failed at the bank or was never released;
    # a claim is in at most one live payout, whatever the concurrency
    "ALTER TABLE payments.payout_lines ADD COLUMN live boolean NOT NULL DEFAULT true",
    """
    UPDATE payments.payout_lines l SET live = false FROM payments.payouts p
    WHERE p.payout_id = l.payout_id AND p.status IN ('failed', 'cancelled')
    """,
    "CREATE UNIQUE INDEX payout_lines_claim_once ON payments.payout_lines (claim_id) WHERE live",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX payments.payout_lines_claim_once")
    op.execute("ALTER TABLE payments.payout_lines DROP COLUMN live")
    op.execute("ALTER TABLE payments.payouts DROP CONSTRAINT payouts_status")
    op.execute("ALTER TABLE payments.payouts DROP COLUMN cancel_reason, DROP COLUMN agency_id")
    op.execute("ALTER TABLE payments.payout_runs DROP CONSTRAINT payout_runs_status")
    op.execute(
        "ALTER TABLE payments.payout_runs DROP COLUMN status, DROP COLUMN agency_id, "
        "DROP COLUMN approval_id, DROP COLUMN decided_at"
    )
    op.execute(
        "ALTER TABLE payments.payees DROP COLUMN source, DROP COLUMN effective_at, "
        "DROP COLUMN verified_at, DROP COLUMN verified_by"
    )
    op.execute("DROP INDEX payments.providers_agency")
    op.execute("ALTER TABLE payments.providers DROP COLUMN agency_id")
