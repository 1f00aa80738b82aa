"""Key wrapping and data minimisation: each personal data key is stored wrapped by the
key-encryption key of ``ILA_ACCOUNTS_KEK`` (never in the database); the need flags move into
the encrypted personal data, the account keeps only the need tier they give; the birth year
goes (the birth date is in the encrypted personal data); lifecycle reasons become a code
plus an optional note; erased accounts lose their country, region and note.

One-way: going back would put the data keys in plaintext beside their ciphertext again.

Revision ID: 0003_key_wrapping
"""

from typing import Any

from alembic import op
from sqlalchemy import text

from services.accounts.handlers.personal import Keyring, decrypt_personal, encrypt_personal
from shared.events.accounts import NEED_TIERS, need_tier
from shared.settings import get_settings

revision = "0003_key_wrapping"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tiers = ", ".join(f"'{t}'" for t in NEED_TIERS)
    op.execute(
        "ALTER TABLE accounts.personal_keys ADD COLUMN kek_id text, ADD COLUMN wrapped_key bytea"
    )
    op.execute(
        "ALTER TABLE accounts.accounts "
        f"ADD COLUMN need_tier text NOT NULL DEFAULT 'standard' CHECK (need_tier IN ({tiers})), "
        "ADD COLUMN status_reason_code text, "
        "ALTER COLUMN country DROP NOT NULL, ALTER COLUMN region DROP NOT NULL"
    )
    op.execute("ALTER TABLE accounts.accounts RENAME COLUMN status_reason TO status_note")
    _move_existing(op.get_bind())
    op.execute("ALTER TABLE accounts.accounts DROP COLUMN need_flags, DROP COLUMN birth_year")
    op.execute(
        "ALTER TABLE accounts.personal_keys DROP COLUMN data_key, "
        "ALTER COLUMN kek_id SET NOT NULL, ALTER COLUMN wrapped_key SET NOT NULL"
    )


def _move_existing(conn: Any) -> None:
    """Seal each account's need flags with its personal data and wrap its data key."""
    keyring = Keyring(get_settings().kek_ring())
    rows = conn.execute(
        text(
            "SELECT a.account_id, a.need_flags, a.personal_nonce, a.personal_ciphertext, "
            "k.data_key FROM accounts.accounts a "
            "LEFT JOIN accounts.personal_keys k USING (account_id)"
        )
    ).all()
    for r in rows:
        changes: dict[str, Any] = {"a": r.account_id, "tier": need_tier(r.need_flags or [])}
        sql = "need_tier = :tier"
        if r.data_key is not None and r.personal_ciphertext is not None:
            key = bytes(r.data_key)
            personal = decrypt_personal(
                key, r.account_id, bytes(r.personal_nonce), bytes(r.personal_ciphertext)
            )
            personal["need_flags"] = sorted(set(r.need_flags or []))
            nonce, blob = encrypt_personal(key, r.account_id, personal)
            changes.update(n=nonce, b=blob)
            sql += ", personal_nonce = :n, personal_ciphertext = :b"
            wrapped = keyring.wrap(r.account_id, key)
            conn.execute(
                text(
                    "UPDATE accounts.personal_keys SET kek_id = :k, wrapped_key = :w "
                    "WHERE account_id = :a"
                ),
                {"a": r.account_id, "k": wrapped.kek_id, "w": wrapped.wrapped},
            )
        conn.execute(text(f"UPDATE accounts.accounts SET {sql} WHERE account_id = :a"), changes)
    # keys left without personal data to open (erased accounts keep none) go
    conn.execute(text("DELETE FROM accounts.personal_keys WHERE wrapped_key IS NULL"))
    conn.execute(
        text(
            "UPDATE accounts.accounts SET status_reason_code = 'other' WHERE status_note IS NOT "
            "NULL OR status <> 'active'"
        )
    )
    conn.execute(
        text(
            "UPDATE accounts.accounts SET status_note = NULL, country = NULL, region = NULL "
            "WHERE erased_at IS NOT NULL"
        )
    )
