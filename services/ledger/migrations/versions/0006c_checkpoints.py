"""Signed stream-head checkpoints: the position, hash and event count of the store's head,
signed with a key the database does not hold, so a store cut short is found by verify.

Revision ID: 0006c
"""

from alembic import op

revision = "0006c"
down_revision = "0005r"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger.checkpoints (
            checkpoint_id  bigserial PRIMARY KEY,
            position       bigint NOT NULL,
            head_position  bigint NOT NULL,
            head_hash      text NOT NULL,
            event_count    bigint NOT NULL,
            key_id         text NOT NULL,
            signature      text NOT NULL,
            at             timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX checkpoints_position ON ledger.checkpoints (position)")
    # like the events: written once, never changed by the service
    op.execute(
        "CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger.checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change()"
    )
    op.execute("GRANT SELECT, INSERT ON ledger.checkpoints TO ila_ledger_app")
    op.execute("GRANT USAGE ON SEQUENCE ledger.checkpoints_checkpoint_id_seq TO ila_ledger_app")


def downgrade() -> None:
    op.execute("DROP TABLE ledger.checkpoints")
