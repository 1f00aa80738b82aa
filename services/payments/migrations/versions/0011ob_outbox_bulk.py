"""Outbox rows can be bulk (a yearly allocation's grants): the relay publishes the other
rows first, so that a backlog of bulk rows does not hold back the events that answer
people (see ``shared.kernel_ddl.outbox_bulk_ddl``).

Revision ID: 0011ob
"""

from alembic import op

from shared.kernel_ddl import outbox_bulk_ddl, outbox_bulk_downgrade

revision = "0011ob"
down_revision = "0010an"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_bulk_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox_bulk_downgrade("payments"):
        op.execute(statement)
