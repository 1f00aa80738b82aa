"""The outbox announces new rows on its channel, so relays wake without polling; this
revision also joins the branches before it.

Revision ID: 0009l
"""

from alembic import op

from shared.kernel_ddl import outbox_notify_ddl, outbox_notify_downgrade

revision = "0009l"
down_revision = ("0007r", "0008d")
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_notify_downgrade("payments"):
        op.execute(statement)
