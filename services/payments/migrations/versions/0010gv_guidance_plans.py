"""Guidance plans: the outcome of a guidance session, recorded by the provider of the
enrolment (the courses and skills it names; labels and a note stay here, never in events);
later enrolments name the plan that led to them. The course read model keeps each course's
kind (``training``, ``guidance``, ``validation``; unknown for courses projected before).

Revision ID: 0010gv
"""

from alembic import op

revision = "0010gv"
down_revision = ("0009a", "0009l", "0009n")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments.courses ADD COLUMN kind text")
    op.execute(
        """CREATE TABLE payments.guidance_plans (
            plan_id      uuid PRIMARY KEY,
            enrolment_id uuid NOT NULL UNIQUE REFERENCES payments.enrolments (enrolment_id),
            account_id   uuid NOT NULL,
            provider_id  text NOT NULL,
            course_ids   uuid[] NOT NULL DEFAULT '{}',
            skills       jsonb NOT NULL DEFAULT '[]',
            note         text,
            recorded_by  text NOT NULL,
            recorded_at  timestamptz NOT NULL,
            CHECK (cardinality(course_ids) > 0 OR jsonb_array_length(skills) > 0)
        )"""
    )
    op.execute("CREATE INDEX guidance_plans_account ON payments.guidance_plans (account_id)")
    op.execute("CREATE INDEX guidance_plans_recorded ON payments.guidance_plans (recorded_at)")
    op.execute(
        "ALTER TABLE payments.enrolments ADD COLUMN guidance_plan_id uuid "
        "REFERENCES payments.guidance_plans (plan_id)"
    )
    op.execute(
        "CREATE INDEX enrolments_guidance_plan ON payments.enrolments (guidance_plan_id) "
        "WHERE guidance_plan_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX payments.enrolments_guidance_plan")
    op.execute("ALTER TABLE payments.enrolments DROP COLUMN guidance_plan_id")
    op.execute("DROP TABLE payments.guidance_plans")
    op.execute("ALTER TABLE payments.courses DROP COLUMN kind")
