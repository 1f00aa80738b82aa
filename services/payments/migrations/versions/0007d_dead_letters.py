"""Dead letters: what the payments consumer gave up on, with its error, until an operator
replays it.

Revision ID: 0007d
"""

from alembic import op

from shared.kernel_ddl import dead_letters_ddl

revision = "0007d"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letters_ddl("payments"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "payments".dead_letters')
