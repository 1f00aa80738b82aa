"""Dead letters: what the catalogue consumer gave up on, with its error, until an operator
replays it.

Revision ID: 0004d
"""

from alembic import op

from shared.kernel_ddl import dead_letters_ddl

revision = "0004d"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letters_ddl("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "catalogue".dead_letters')
