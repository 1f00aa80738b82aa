"""The kernel tables (outbox, inbox, idempotency) of the catalogue service.

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ddl in kernel_tables("catalogue"):
        op.execute(ddl)
