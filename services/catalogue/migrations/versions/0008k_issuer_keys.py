"""Issuer keys with ids that rotate, revocation as a Bitstring Status List, the European
Learning Model form of each credential, and four-eyes proposals (revoking an issuer key).

- ``issuer_keys``: each key's id, public part, private part wrapped (AES-GCM under a key
  derived from ILA_CREDENTIAL_KEY_SEED), when it was created, retired and from when it is
  revoked; at most one key is current (not retired);
- ``status_lists``: each list's counter of indices handed out and its signed
  BitstringStatusListCredential as served (re-signed when a bit flips);
- ``credentials``: the key that signed, the list and index of its status, its ELM document.

Revision ID: 0008k
"""

from alembic import op

from shared.approvals import approvals_ddl

revision = "0008k"
down_revision = ("0007m", "0007v")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE catalogue.issuer_keys (
            kid             text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_.-]{1,40}$'),
            public_key      bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
            wrapped_private bytea NOT NULL,
            created_at      timestamptz NOT NULL,
            retired_at      timestamptz,
            revoked_after   timestamptz,
            revocation_reason text
        )"""
    )
    op.execute(
        "CREATE UNIQUE INDEX issuer_keys_one_current ON catalogue.issuer_keys ((true)) "
        "WHERE retired_at IS NULL"
    )
    op.execute(
        """CREATE TABLE catalogue.status_lists (
            list_id     integer PRIMARY KEY CHECK (list_id >= 1),
            size        integer NOT NULL CHECK (size > 0 AND size % 8 = 0),
            handed_out  integer NOT NULL DEFAULT 0,
            document    text,
            etag        text,
            updated_at  timestamptz NOT NULL,
            CHECK (handed_out BETWEEN 0 AND size)
        )"""
    )
    op.execute(
        "ALTER TABLE catalogue.credentials ADD COLUMN key_id text, "
        "ADD COLUMN status_list integer REFERENCES catalogue.status_lists (list_id), "
        "ADD COLUMN status_index integer, ADD COLUMN elm_document text"
    )
    op.execute(
        "CREATE UNIQUE INDEX credentials_status_entry ON catalogue.credentials "
        "(status_list, status_index) WHERE status_list IS NOT NULL"
    )
    op.execute("CREATE INDEX credentials_by_key ON catalogue.credentials (key_id, issued_at)")
    for statement in approvals_ddl("catalogue"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE catalogue.approvals")
    op.execute("DROP INDEX catalogue.credentials_by_key")
    op.execute("DROP INDEX catalogue.credentials_status_entry")
    op.execute(
        "ALTER TABLE catalogue.credentials DROP COLUMN key_id, DROP COLUMN status_list, "
        "DROP COLUMN status_index, DROP COLUMN elm_document"
    )
    op.execute("DROP TABLE catalogue.status_lists")
    op.execute("DROP TABLE catalogue.issuer_keys")
