"""Validations of prior learning: what a provider validated for a learner (the learning
outcomes, the EQF level, the assessment: method, date and the assessor's body) on an
enrolment in a course of kind ``validation``, once per enrolment, with the credential it
issued. Credentials say which kind they are (``completion`` of training, ``validation``);
the enrolments read model keeps the learner and the provider of each enrolment.

Revision ID: 0009gv
"""

from alembic import op

revision = "0009gv"
down_revision = "0008k"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE catalogue.session_enrolments ADD COLUMN account_id uuid, "
        "ADD COLUMN provider_id text"
    )
    op.execute(
        "ALTER TABLE catalogue.credentials ADD COLUMN kind text NOT NULL DEFAULT 'completion' "
        "CHECK (kind IN ('completion', 'validation'))"
    )
    op.execute(
        """CREATE TABLE catalogue.validations (
            validation_id     uuid PRIMARY KEY,
            enrolment_id      uuid NOT NULL UNIQUE,
            account_id        uuid NOT NULL,
            provider_id       uuid NOT NULL,
            course_id         uuid NOT NULL,
            course_version    integer NOT NULL,
            learning_outcomes jsonb NOT NULL CHECK (jsonb_array_length(learning_outcomes) > 0),
            eqf_level         integer NOT NULL CHECK (eqf_level BETWEEN 1 AND 8),
            method            text NOT NULL,
            assessed_on       date NOT NULL,
            assessor_body     text NOT NULL,
            credential_id     uuid NOT NULL REFERENCES catalogue.credentials (credential_id),
            recorded_by       text NOT NULL,
            recorded_at       timestamptz NOT NULL
        )"""
    )
    op.execute("CREATE INDEX validations_recorded ON catalogue.validations (recorded_at)")
    op.execute("CREATE INDEX validations_account ON catalogue.validations (account_id)")


def downgrade() -> None:
    op.execute("DROP TABLE catalogue.validations")
    op.execute("ALTER TABLE catalogue.credentials DROP COLUMN kind")
    op.execute(
        "ALTER TABLE catalogue.session_enrolments DROP COLUMN account_id, DROP COLUMN provider_id"
    )
