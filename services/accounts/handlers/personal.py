"""Personal data sealed per account: AES-GCM under the account's own data key, bound to the
account id; the data key itself stored wrapped (AES-GCM again) by a key-encryption key from
``ILA_ACCOUNTS_KEK`` that never enters the database.

Erasure deletes the wrapped key (see :mod:`services.accounts.store.keys`), after which no
copy of the ciphertext can be read; a copy of the database taken before the erasure opens
nothing without the key-encryption key. Rotating the key-encryption key re-wraps every data
key under the current one (:func:`rotate`); the personal data are not touched.

What is sealed: the names and contact data, the birth date and the need flags.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.store import keys
from services.accounts.store.accounts import AccountRow
from services.accounts.store.keys import WrappedKey

NONCE = 12


class UnknownKek(RuntimeError):
    """A data key wrapped by a key-encryption key the settings no longer hold."""


@dataclass(frozen=True)
class Keyring:
    """The key-encryption keys by id, the current one (which wraps new keys) first."""

    keks: Mapping[str, bytes]

    @property
    def current(self) -> str:
        return next(iter(self.keks))

    @staticmethod
    def _aad(kek_id: str, account_id: uuid.UUID) -> bytes:
        return b"ila-accounts-data-key\n" + kek_id.encode() + b"\n" + account_id.bytes

    def wrap(self, account_id: uuid.UUID, data_key: bytes) -> WrappedKey:
        kek_id = self.current
        nonce = os.urandom(NONCE)
        sealed = AESGCM(self.keks[kek_id]).encrypt(nonce, data_key, self._aad(kek_id, account_id))
        return WrappedKey(kek_id, nonce + sealed)

    def unwrap(self, account_id: uuid.UUID, key: WrappedKey) -> bytes:
        kek = self.keks.get(key.kek_id)
        if kek is None:
            raise UnknownKek(
                f"the data key of account {account_id} is wrapped by key-encryption key "
                f"{key.kek_id!r}, which ILA_ACCOUNTS_KEK does not hold"
            )
        nonce, sealed = key.wrapped[:NONCE], key.wrapped[NONCE:]
        return AESGCM(kek).decrypt(nonce, sealed, self._aad(key.kek_id, account_id))


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt_personal(
    key: bytes, account_id: uuid.UUID, personal: Mapping[str, Any]
) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE)
    plain = json.dumps(dict(personal), sort_keys=True)
    return nonce, AESGCM(key).encrypt(nonce, plain.encode(), account_id.bytes)


def decrypt_personal(
    key: bytes, account_id: uuid.UUID, nonce: bytes, blob: bytes
) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(AESGCM(key).decrypt(nonce, blob, account_id.bytes))
    return data


async def personal_data(
    session: AsyncSession, keyring: Keyring, row: AccountRow
) -> dict[str, Any] | None:
    """The account's personal data (need flags included), or None once erased."""
    if row.personal_ciphertext is None or row.personal_nonce is None:
        return None
    return opened(keyring, row, await keys.wrapped_key(session, row.account_id))


def opened(keyring: Keyring, row: AccountRow, wrapped: WrappedKey | None) -> dict[str, Any] | None:
    """The account's personal data read with its stored key ``wrapped`` (None: erased)."""
    if row.personal_ciphertext is None or row.personal_nonce is None or wrapped is None:
        return None
    key = keyring.unwrap(row.account_id, wrapped)
    return decrypt_personal(key, row.account_id, row.personal_nonce, row.personal_ciphertext)


async def rotate(session: AsyncSession, keyring: Keyring, batch: int = 500) -> int:
    """Re-wrap up to ``batch`` data keys still wrapped by an older key-encryption key under
    the current one; how many it re-wrapped (0: all are current)."""
    stale = await keys.wrapped_elsewhere(session, keyring.current, batch)
    await keys.rewrap(
        session,
        [
            (account_id, keyring.wrap(account_id, keyring.unwrap(account_id, k)))
            for account_id, k in stale
        ],
    )
    return len(stale)
