"""The payments read model of an account keeps the need tier the fee rules read, never need
flags: ``need_flags`` (text[]) becomes ``need_tier`` (text). Rows written before the accounts
service sent tiers held the flags themselves; they get the tier those flags give (a
``disability`` flag gives ``high``, any other flag ``priority``, none ``standard``).

Revision ID: 0009a
"""

from alembic import op

revision = "0009a"
down_revision = "0008d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE payments.accounts ADD COLUMN need_tier text NOT NULL DEFAULT 'standard'"
    )
    op.execute(
        """
        UPDATE payments.accounts SET need_tier = CASE
            WHEN need_flags = ARRAY['standard'] OR need_flags = ARRAY['priority']
                 OR need_flags = ARRAY['high'] THEN need_flags[1]
            WHEN 'disability' = ANY(need_flags) THEN 'high'
            WHEN cardinality(need_flags) > 0 THEN 'priority'
            ELSE 'standard'
        END
        """
    )
    op.execute("ALTER TABLE payments.accounts DROP COLUMN need_flags")
    op.execute(
        "ALTER TABLE payments.accounts ADD CONSTRAINT accounts_need_tier "
        "CHECK (need_tier IN ('standard', 'priority', 'high'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE payments.accounts ADD COLUMN need_flags text[] NOT NULL DEFAULT '{}'")
    op.execute("UPDATE payments.accounts SET need_flags = ARRAY[need_tier]")
    op.execute("ALTER TABLE payments.accounts DROP COLUMN need_tier")
