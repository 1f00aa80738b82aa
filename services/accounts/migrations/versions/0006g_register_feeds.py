"""Register feeds: each run of the population register's feed with its checkpoint (the position
of the last record applied, committed in the same transaction as the accounts it opened or
closed), and the outcome of every record applied (opened, existing, closed,
skipped, rejected, with the reason), from which the run's report is written.

No personal data here: the register's own record id and a reason naming codes, fields and
ages; never the national id, names, dates or the account id.

Revision ID: 0006g
"""

from alembic import op

revision = "0006g"
down_revision = ("0005m", "0005s")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE accounts.register_feeds (
            feed_id        uuid PRIMARY KEY,
            source         text NOT NULL,
            fingerprint    text,
            feed_date      date NOT NULL,
            -- the position of the last record applied (in a file: its line number)
            checkpoint     integer NOT NULL DEFAULT 0 CHECK (checkpoint >= 0),
            last_record_id text,
            opened         integer NOT NULL DEFAULT 0,
            existing       integer NOT NULL DEFAULT 0,
            closed         integer NOT NULL DEFAULT 0,
            skipped        integer NOT NULL DEFAULT 0,
            rejected       integer NOT NULL DEFAULT 0,
            started_at     timestamptz NOT NULL,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            finished_at    timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX register_feeds_fingerprint ON accounts.register_feeds "
        "(fingerprint, started_at) WHERE finished_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE accounts.register_feed_records (
            feed_id     uuid NOT NULL REFERENCES accounts.register_feeds (feed_id),
            position    integer NOT NULL,
            record_id   text,
            outcome     text NOT NULL
                        CHECK (outcome IN ('opened', 'existing', 'closed', 'skipped', 'rejected')),
            reason      text,
            PRIMARY KEY (feed_id, position)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE accounts.register_feed_records")
    op.execute("DROP TABLE accounts.register_feeds")
