"""The outbox announces new rows on its channel, so relays wake without polling; this
revision also joins the branches before it.

Revision ID: 0004l
"""

from alembic import op

from shared.kernel_ddl import outbox_notify_ddl, outbox_notify_downgrade

revision = "0004l"
down_revision = ("0003_key_wrapping", "0003d", "0003r")
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("accounts"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_notify_downgrade("accounts"):
        op.execute(statement)
