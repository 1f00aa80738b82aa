"""Providers, courses and their versions, credentials, and the kernel tables.

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ddl in kernel_tables("catalogue"):
        op.execute(ddl)
    op.execute(
        """
        CREATE TABLE catalogue.providers (
            provider_id          uuid PRIMARY KEY,
            agency_id            text NOT NULL,
            name                 text NOT NULL,
            country              char(2) NOT NULL,
            registration_number  text NOT NULL,
            qa_scheme            text NOT NULL,
            qa_valid_until       date NOT NULL,
            iban                 text NOT NULL,
            bic                  text NOT NULL,
            status               text NOT NULL DEFAULT 'registered'
                                 CHECK (status IN ('registered', 'accredited', 'suspended')),
            status_reason        text,
            registered_at        timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now(),
            UNIQUE (country, registration_number)
        )
        """
    )
    # The current version of each course, flattened for search; every version's full
    # content is kept in course_versions.
    op.execute(
        """
        CREATE TABLE catalogue.courses (
            course_id         uuid PRIMARY KEY,
            provider_id       uuid NOT NULL REFERENCES catalogue.providers (provider_id),
            status            text NOT NULL DEFAULT 'draft' CHECK (status IN
                              ('draft', 'submitted', 'approved', 'rejected', 'withdrawn')),
            status_reason     text,
            version           integer NOT NULL CHECK (version >= 1),
            kind              text NOT NULL CHECK (kind IN ('training', 'guidance', 'validation')),
            title             text NOT NULL,
            language          char(2) NOT NULL,
            eqf_level         smallint NOT NULL CHECK (eqf_level BETWEEN 1 AND 8),
            isced_field       text NOT NULL CHECK (isced_field ~ '^[0-9]{2,4}$'),
            mode              text NOT NULL CHECK (mode IN ('in_person', 'online', 'blended')),
            region            text NOT NULL,
            price             bigint NOT NULL CHECK (price > 0),
            next_session      timestamptz,
            search            tsvector NOT NULL,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now(),
            approved_at       timestamptz
        )
        """
    )
    op.execute("CREATE INDEX courses_search ON catalogue.courses USING gin (search)")
    op.execute("CREATE INDEX courses_provider ON catalogue.courses (provider_id, course_id)")
    # the registry reads only approved courses: keep its indexes to those rows
    op.execute(
        "CREATE INDEX courses_listed_title ON catalogue.courses (title, course_id) "
        "WHERE status = 'approved'"
    )
    op.execute(
        "CREATE INDEX courses_listed_isced ON catalogue.courses "
        "(isced_field text_pattern_ops) WHERE status = 'approved'"
    )
    op.execute(
        """
        CREATE TABLE catalogue.course_versions (
            course_id   uuid NOT NULL REFERENCES catalogue.courses (course_id),
            version     integer NOT NULL CHECK (version >= 1),
            content     jsonb NOT NULL,
            changed     text[] NOT NULL DEFAULT '{}',
            created_by  text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (course_id, version)
        )
        """
    )
    # every workflow step, with who took it and why (an agency's decisions are auditable)
    op.execute(
        """
        CREATE TABLE catalogue.course_history (
            id          bigserial PRIMARY KEY,
            course_id   uuid NOT NULL REFERENCES catalogue.courses (course_id),
            version     integer NOT NULL,
            action      text NOT NULL,
            from_status text,
            to_status   text NOT NULL,
            actor       text NOT NULL,
            reason      text,
            at          timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX course_history_course ON catalogue.course_history (course_id, id)")
    # The signed document is kept byte for byte as issued.
    op.execute(
        """
        CREATE TABLE catalogue.credentials (
            credential_id      uuid PRIMARY KEY,
            enrolment_id       uuid NOT NULL UNIQUE,
            account_id         uuid NOT NULL,
            course_id          uuid NOT NULL,
            course_version     integer NOT NULL,
            provider_id        uuid NOT NULL,
            document           text NOT NULL,
            issued_at          timestamptz NOT NULL,
            revoked_at         timestamptz,
            revocation_reason  text
        )
        """
    )
    op.execute("CREATE INDEX credentials_account ON catalogue.credentials (account_id)")
