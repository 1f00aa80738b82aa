"""Funders and their yearly budgets: who may grant top-ups, and the projection row of each
budget's stream (its head, locked for each draw, and what it may still grant); the events
that move paid credit (captures and their reversals) indexed by time for the funders'
statements.

Revision ID: 0008f
"""

from alembic import op

revision = "0008f"
down_revision = "0007l"
branch_labels = None
depends_on = None

APP_ROLE = "ila_ledger_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger.funders (
            funder_id    text PRIMARY KEY,
            kind         text NOT NULL
                CHECK (kind IN ('employer', 'region', 'sector_fund', 'state')),
            name         text NOT NULL,
            employer_id  text,
            region       text,
            created_by   text NOT NULL,
            created_at   timestamptz NOT NULL
        )
        """
    )
    # the projection of each budget's stream (written with each append, checked by verify)
    op.execute(
        """
        CREATE TABLE ledger.budgets (
            budget_id   uuid PRIMARY KEY,
            funder_id   text NOT NULL REFERENCES ledger.funders (funder_id),
            year        integer NOT NULL,
            amount      bigint NOT NULL CHECK (amount >= 0),
            drawn       bigint NOT NULL CHECK (drawn >= 0),
            draws       integer NOT NULL,
            version     integer NOT NULL,
            head_hash   text NOT NULL,
            updated_at  timestamptz NOT NULL,
            UNIQUE (funder_id, year),
            CHECK (drawn <= amount)
        )
        """
    )
    op.execute(
        "CREATE INDEX events_payments ON ledger.events (recorded_at) WHERE "
        "(type LIKE 'ila.ledger.ReservationCaptured.%' OR type LIKE 'ila.ledger.EntryReversed.%')"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger.funders TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger.budgets TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP INDEX ledger.events_payments")
    op.execute("DROP TABLE ledger.budgets")
    op.execute("DROP TABLE ledger.funders")
