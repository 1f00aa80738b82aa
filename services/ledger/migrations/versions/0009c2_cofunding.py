"""Funders' co-funding rules: each in force once finance approved it, with its criteria,
what it pays (a share of the shortfall, a cap per enrolment) and the budget year it draws
on; ``rank`` is the order the rules came into force (the order they pay in, after the
funder's kind).

Revision ID: 0009c2
"""

from alembic import op

revision = "0009c2"
down_revision = "0008f"
branch_labels = None
depends_on = None

APP_ROLE = "ila_ledger_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger.cofunding_rules (
            rule_id       uuid PRIMARY KEY,
            rank          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            funder_id     text NOT NULL REFERENCES ledger.funders (funder_id),
            funder_kind   text NOT NULL,
            year          integer NOT NULL,
            share         integer CHECK (share BETWEEN 1 AND 100),
            cap           bigint CHECK (cap > 0),
            employer_id   text,
            region        text,
            isced_prefix  text,
            eqf_min       integer CHECK (eqf_min BETWEEN 1 AND 8),
            eqf_max       integer CHECK (eqf_max BETWEEN 1 AND 8),
            approval_id   uuid NOT NULL,
            adopted_at    timestamptz NOT NULL,
            CHECK (share IS NOT NULL OR cap IS NOT NULL),
            CHECK (eqf_min IS NULL OR eqf_max IS NULL OR eqf_min <= eqf_max)
        )
        """
    )
    op.execute("CREATE INDEX cofunding_rules_year ON ledger.cofunding_rules (year)")
    op.execute("CREATE INDEX cofunding_rules_funder ON ledger.cofunding_rules (funder_id)")
    op.execute(f"GRANT SELECT, INSERT ON ledger.cofunding_rules TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE ledger.cofunding_rules")
