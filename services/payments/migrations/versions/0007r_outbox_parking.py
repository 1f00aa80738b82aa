"""The outbox relay parks a row it cannot publish (attempts, last error, parked_at) so the
rows after it flow on.

Revision ID: 0007r
"""

from alembic import op

from shared.kernel_ddl import outbox_parking_ddl, outbox_parking_downgrade

revision = "0007r"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_parking_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_parking_downgrade("payments"):
        op.execute(statement)
