"""Parked events: what the catalogue consumer received but could not read as any type it knows.

Revision ID: 0003
"""

from alembic import op

from shared.kernel_ddl import parked_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in parked_ddl("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "catalogue".parked')
