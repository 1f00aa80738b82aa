"""Dead letters: what the ledger consumer gave up on, with its error, until an operator
replays it.

Revision ID: 0005d
"""

from alembic import op

from shared.kernel_ddl import dead_letters_ddl

revision = "0005d"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letters_ddl("ledger"):
        op.execute(statement)
    op.execute("GRANT SELECT, INSERT, UPDATE ON ledger.dead_letters TO ila_ledger_app")


def downgrade() -> None:
    op.execute('DROP TABLE "ledger".dead_letters')
