"""Decisions keep a reason code and, apart, an optional free-text note: ``status_reason`` and
the history's ``reason`` now hold codes (the events carry the same codes); what they held
before moves to the new note columns. A credential's revocation keeps its code only.

Revision ID: 0006r
"""

from alembic import op

revision = "0006r"
down_revision = "0005l"
branch_labels = None
depends_on = None

CODES = (
    "qa_audit_passed",
    "qa_renewed",
    "concerns_resolved",
    "fraud_suspected",
    "quality_concerns",
    "qa_expired",
    "requested_by_provider",
    "meets_criteria",
    "incomplete_information",
    "not_eligible",
    "price_not_justified",
    "duplicate_course",
    "no_longer_offered",
    "replaced",
    "provider_closing",
    "capture_reversed",
    "fraud",
    "issued_in_error",
    "other",
)
KNOWN = "(" + ", ".join(f"'{code}'" for code in CODES) + ")"


def upgrade() -> None:
    for table, code, note in (
        ("providers", "status_reason", "status_note"),
        ("courses", "status_reason", "status_note"),
        ("course_history", "reason", "note"),
    ):
        op.execute(f"ALTER TABLE catalogue.{table} ADD COLUMN {note} text")
        op.execute(
            f"UPDATE catalogue.{table} SET {note} = {code}, {code} = 'other' "
            f"WHERE {code} IS NOT NULL AND {code} NOT IN {KNOWN}"
        )
    op.execute(
        "UPDATE catalogue.credentials SET revocation_reason = 'other' "
        f"WHERE revocation_reason IS NOT NULL AND revocation_reason NOT IN {KNOWN}"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE catalogue.course_history DROP COLUMN note")
    op.execute("ALTER TABLE catalogue.courses DROP COLUMN status_note")
    op.execute("ALTER TABLE catalogue.providers DROP COLUMN status_note")
