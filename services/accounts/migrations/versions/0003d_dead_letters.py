"""Dead letters: what the accounts consumer gave up on, with its error, until an operator
replays it.

Revision ID: 0003d
"""

from alembic import op

from shared.kernel_ddl import dead_letters_ddl

revision = "0003d"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letters_ddl("accounts"):
        op.execute(statement)


def downgrade() -> None:
    op.execute('DROP TABLE "accounts".dead_letters')
