"""The outbox announces new rows on its channel, so relays wake without polling; this
revision also joins the branches before it.

Revision ID: 0005l
"""

from alembic import op

from shared.kernel_ddl import outbox_notify_ddl, outbox_notify_downgrade

revision = "0005l"
down_revision = ("0004d", "0004r")
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_notify_downgrade("catalogue"):
        op.execute(statement)
