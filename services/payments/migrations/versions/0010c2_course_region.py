"""The course's region in payments' read model of courses: an enrolment's credit request
names it, so that a region's co-funding rules in the ledger can match the enrolments in its
region. Courses projected before stay without one until their next event.

Revision ID: 0010c2
"""

from alembic import op

revision = "0010c2"
down_revision = ("0009a", "0009l", "0009n")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments.courses ADD COLUMN region text")


def downgrade() -> None:
    op.execute("ALTER TABLE payments.courses DROP COLUMN region")
