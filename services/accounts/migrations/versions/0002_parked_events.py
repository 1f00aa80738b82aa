"""Parked events: what the accounts consumer received but could not read as any type it knows.

Revision ID: 0002
"""

from alembic import op

from shared.kernel_ddl import parked_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in parked_ddl("accounts"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "accounts".parked')
