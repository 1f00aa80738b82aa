"""The outbox announces new rows on its channel, so relays wake without polling; this
revision also joins the branches before it.

Revision ID: 0007l
"""

from alembic import op

from shared.kernel_ddl import outbox_notify_ddl, outbox_notify_downgrade

revision = "0007l"
down_revision = ("0005d", "0006c")
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("ledger"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_notify_downgrade("ledger"):
        op.execute(statement)
