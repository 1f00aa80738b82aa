"""Messages to providers: an optional contact e-mail on the provider (never in an event)
and the outgoing messages (one per fact).

Revision ID: 0007m
"""

from alembic import op

from shared.kernel_ddl import mail_ddl

revision = "0007m"
down_revision = "0006r"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE catalogue.providers ADD COLUMN contact_email text")
    for statement in mail_ddl("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE catalogue.outgoing_mail")
    op.execute("ALTER TABLE catalogue.providers DROP COLUMN contact_email")
