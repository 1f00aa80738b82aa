"""What the monitoring statistics need: each account's birth year (for the age bands; the
birth date itself stays in the encrypted personal data, and the year goes with them at
erasure, like the region), when it was closed (holders active during a year), and the
trainings learnt from payments' events (account, year, ISCED-F field).

Existing accounts get their birth year from their personal data (opened with the key ring of
``ILA_ACCOUNTS_KEK``) and, when closed, their last change as closing time.

Revision ID: 0005s
"""

from typing import Any

from alembic import op
from sqlalchemy import text

from services.accounts.handlers.personal import Keyring, decrypt_personal
from services.accounts.store.keys import WrappedKey
from shared.settings import get_settings

revision = "0005s"
down_revision = "0004l"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE accounts.accounts ADD COLUMN birth_year smallint, "
        "ADD COLUMN closed_at timestamptz"
    )
    op.execute("UPDATE accounts.accounts SET closed_at = updated_at WHERE status = 'closed'")
    _birth_years(op.get_bind())
    # One row per enrolment confirmed (credit reserved): the learner trained that year.
    op.execute(
        """
        CREATE TABLE accounts.trainings (
            enrolment_id  uuid PRIMARY KEY,
            account_id    uuid NOT NULL,
            year          smallint NOT NULL,
            isced_field   text,
            confirmed_at  timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX trainings_year ON accounts.trainings (year, account_id)")


def _birth_years(conn: Any) -> None:
    rows = conn.execute(
        text(
            "SELECT a.account_id, a.personal_nonce, a.personal_ciphertext, k.kek_id, "
            "k.wrapped_key FROM accounts.accounts a JOIN accounts.personal_keys k "
            "USING (account_id) WHERE a.personal_ciphertext IS NOT NULL"
        )
    ).all()
    if not rows:
        return
    keyring = Keyring(get_settings().kek_ring())
    for r in rows:
        key = keyring.unwrap(r.account_id, WrappedKey(r.kek_id, bytes(r.wrapped_key)))
        personal = decrypt_personal(
            key, r.account_id, bytes(r.personal_nonce), bytes(r.personal_ciphertext)
        )
        born = str(personal.get("birth_date") or "")
        if born[:4].isdigit():
            conn.execute(
                text("UPDATE accounts.accounts SET birth_year = :y WHERE account_id = :a"),
                {"a": r.account_id, "y": int(born[:4])},
            )


def downgrade() -> None:
    op.execute("DROP TABLE accounts.trainings")
    op.execute("ALTER TABLE accounts.accounts DROP COLUMN birth_year, DROP COLUMN closed_at")
