"""Personal data sealed per account: AES-GCM under the account's own data key, bound to the
account id. Erasure deletes the key (see :mod:`services.accounts.store.keys`), after which
no copy of the ciphertext can be read."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.commands import PersonalData
from services.accounts.store import keys
from services.accounts.store.accounts import AccountRow


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt_personal(
    key: bytes, account_id: uuid.UUID, personal: PersonalData, birth: date
) -> tuple[bytes, bytes]:
    nonce = os.urandom(12)
    plain = json.dumps({**personal.model_dump(mode="json"), "birth_date": birth.isoformat()})
    return nonce, AESGCM(key).encrypt(nonce, plain.encode(), account_id.bytes)


def decrypt_personal(
    key: bytes, account_id: uuid.UUID, nonce: bytes, blob: bytes
) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(AESGCM(key).decrypt(nonce, blob, account_id.bytes))
    return data


async def personal_data(session: AsyncSession, row: AccountRow) -> dict[str, Any] | None:
    """The account's personal data, or None once erased."""
    if row.personal_ciphertext is None or row.personal_nonce is None:
        return None
    key = await keys.data_key(session, row.account_id)
    if key is None:
        return None
    return decrypt_personal(key, row.account_id, row.personal_nonce, row.personal_ciphertext)
