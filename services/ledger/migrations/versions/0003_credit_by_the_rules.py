"""Credit only by the rules: a policy records who proposed and who approved it; an
allocation run records its approval, the policy it runs with and, when it fails, why.

Policies stored before this revision were set by one person: they carry no approval and
are not used by any allocation until proposed and approved again. At most one allocation
runs per year.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_ROLE = "ila_ledger_app"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE ledger.policies ADD COLUMN proposed_by text, "
        "ADD COLUMN approved_by text, ADD COLUMN approval_id uuid"
    )
    op.execute(
        "ALTER TABLE ledger.allocations ADD COLUMN policy jsonb, ADD COLUMN approval_id uuid, "
        "ADD COLUMN approved_by text, ADD COLUMN agency_id text, ADD COLUMN failure_code text"
    )
    # a run left running by an earlier version with no approved policy can only fail now
    op.execute(
        "UPDATE ledger.allocations SET status = 'failed', failure_code = 'no_approved_policy', "
        "error = 'started before allocations needed an approved policy', "
        "finished_at = now(), updated_at = now() WHERE status = 'running'"
    )
    op.execute(
        "CREATE UNIQUE INDEX allocations_one_running_per_year ON ledger.allocations (year) "
        "WHERE status = 'running'"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger.policies TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger.allocations TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP INDEX ledger.allocations_one_running_per_year")
    op.execute(
        "ALTER TABLE ledger.allocations DROP COLUMN policy, DROP COLUMN approval_id, "
        "DROP COLUMN approved_by, DROP COLUMN agency_id, DROP COLUMN failure_code"
    )
    op.execute(
        "ALTER TABLE ledger.policies DROP COLUMN proposed_by, DROP COLUMN approved_by, "
        "DROP COLUMN approval_id"
    )
