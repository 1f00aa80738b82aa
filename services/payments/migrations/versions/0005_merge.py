"""Joins the payouts (0003) and claims (0004) histories, both built on 0002.

Revision ID: 0005
"""

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
