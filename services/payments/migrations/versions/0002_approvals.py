"""Four-eyes proposals of payments (bank details, payout releases, hold releases).

Revision ID: 0002
"""

from alembic import op

from shared.approvals import approvals_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in approvals_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE payments.approvals")
