"""Four-eyes proposals of the ledger (policies, allocation runs, reversals).

Revision ID: 0002
"""

from alembic import op

from shared.approvals import approvals_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APP_ROLE = "ila_ledger_app"


def upgrade() -> None:
    for statement in approvals_ddl("ledger"):
        op.execute(statement)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger.approvals TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE ledger.approvals")
