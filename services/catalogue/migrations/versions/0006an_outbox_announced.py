"""The outbox no longer announces its rows from a trigger: a notice sent inside the writing
transaction serialises every writer's commit on PostgreSQL's global notify lock. The writer
announces on the same channel after its commit instead (``shared.listen.announce``).

Revision ID: 0006an
"""

from alembic import op

from shared.kernel_ddl import outbox_notify_ddl, outbox_notify_downgrade

revision = "0006an"
down_revision = "0005l"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_downgrade("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_notify_ddl("catalogue"):
        op.execute(statement)
