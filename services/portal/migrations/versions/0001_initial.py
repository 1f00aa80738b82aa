"""Sign-in sessions, and the kernel tables every component has.

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import (
    dead_letters_ddl,
    kernel_tables,
    outbox_notify_ddl,
    outbox_parking_ddl,
    parked_ddl,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ddl in (
        kernel_tables("portal")
        + parked_ddl("portal")
        + dead_letters_ddl("portal")
        + outbox_parking_ddl("portal")
        + outbox_notify_ddl("portal")
    ):
        op.execute(ddl)
    # Server-side sessions: the cookie carries only a random id; the row holds who is
    # signed in (an account id, never a national id), the CSRF secret and the expiry.
    op.execute(
        """
        CREATE TABLE portal.sessions (
            session_id   text PRIMARY KEY,
            account_id   uuid,
            csrf_secret  text NOT NULL,
            data         jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX sessions_expiry ON portal.sessions (expires_at)")


def downgrade() -> None:
    op.execute("DROP SCHEMA portal CASCADE")
