"""Parked events: what the payments consumer received but could not read as any type it knows.

Revision ID: 0006
"""

from alembic import op

from shared.kernel_ddl import parked_ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in parked_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "payments".parked')
