"""Parked events: what the ledger consumer received but could not read as any type it knows.

Revision ID: 0004
"""

from alembic import op

from shared.kernel_ddl import parked_ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in parked_ddl("ledger"):
        op.execute(statement)
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ledger.parked TO ila_ledger_app")


def downgrade() -> None:
    op.execute('DROP TABLE "ledger".parked')
