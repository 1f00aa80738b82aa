"""The account holder's employer, as an id (its co-funding rules cover its employees): in
the need profile the accounts events carry to the ledger.

Revision ID: 0006c2
"""

from alembic import op

revision = "0006c2"
down_revision = ("0005m", "0005s")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE accounts.accounts ADD COLUMN employer_id text")


def downgrade() -> None:
    op.execute("ALTER TABLE accounts.accounts DROP COLUMN employer_id")
