"""Claims safety: the learner attests or contests a claim within a window before payout.

``attestation`` says where the learner's word stands: ``pending`` until ``attest_until``,
then ``attested`` (the learner confirmed), ``contested`` (held until resolved), ``lapsed``
(the window passed uncontested), ``resolved`` (a contested claim released under four eyes)
or ``not_required`` (claims no learner is asked about: rejected claims, a late
cancellation's share, and the claims stored before this revision).

Sessions and enrolments keep the moment the session ends (``ends_at``): a completion is
claimed from then on (from the day after ``ends_on`` when only the day is known).

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE payments.claims
            ADD COLUMN attestation text NOT NULL DEFAULT 'not_required'
                CHECK (attestation IN ('pending', 'attested', 'contested', 'lapsed',
                                       'resolved', 'not_required')),
            ADD COLUMN attest_until timestamptz,
            ADD COLUMN attested_at timestamptz,
            ADD COLUMN contested_at timestamptz,
            ADD COLUMN contest_reason text
        """
    )
    op.execute("ALTER TABLE payments.sessions ADD COLUMN ends_at timestamptz")
    op.execute("ALTER TABLE payments.enrolments ADD COLUMN ends_at timestamptz")
    op.execute(
        "CREATE INDEX claims_attestation_due ON payments.claims (attest_until) "
        "WHERE attestation = 'pending'"
    )
    op.execute("CREATE INDEX claims_account ON payments.claims (account_id, claimed_at)")
    op.execute("CREATE INDEX accounts_agency ON payments.accounts (agency_id)")


def downgrade() -> None:
    op.execute("ALTER TABLE payments.enrolments DROP COLUMN ends_at")
    op.execute("ALTER TABLE payments.sessions DROP COLUMN ends_at")
    op.execute("DROP INDEX payments.accounts_agency")
    op.execute("DROP INDEX payments.claims_account")
    op.execute("DROP INDEX payments.claims_attestation_due")
    op.execute(
        "ALTER TABLE payments.claims DROP COLUMN attestation, DROP COLUMN attest_until, "
        "DROP COLUMN attested_at, DROP COLUMN contested_at, DROP COLUMN contest_reason"
    )
