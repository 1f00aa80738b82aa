"""Accounts, personal-data keys, and the kernel tables (outbox, inbox, idempotency).

Revision ID: 0001
"""

from alembic import op

from shared.kernel_ddl import kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ddl in kernel_tables("accounts"):
        op.execute(ddl)
    op.execute(
        """
        CREATE TABLE accounts.accounts (
            account_id          uuid PRIMARY KEY,
            national_id_hash    text NOT NULL UNIQUE,
            agency_id           text NOT NULL,
            birth_year          smallint NOT NULL,
            country             char(2) NOT NULL,
            region              text NOT NULL,
            qualification_level smallint NOT NULL CHECK (qualification_level BETWEEN 0 AND 8),
            employment_status   text NOT NULL,
            need_flags          text[] NOT NULL DEFAULT '{}',
            status              text NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'suspended', 'closed')),
            status_reason       text,
            personal_nonce      bytea,
            personal_ciphertext bytea,
            erased_at           timestamptz,
            opened_at           timestamptz NOT NULL DEFAULT now(),
            updated_at          timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX accounts_agency ON accounts.accounts (agency_id, account_id)")
    # Per-account data keys: erasure deletes the key, which makes every copy of the
    # ciphertext (replicas, backups) unreadable. Production keeps this table in a key store
    # whose backups expire quickly.
    op.execute(
        """
        CREATE TABLE accounts.personal_keys (
            account_id  uuid PRIMARY KEY REFERENCES accounts.accounts (account_id),
            data_key    bytea NOT NULL
        )
        """
    )
