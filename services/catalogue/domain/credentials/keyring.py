"""The issuer's keyring (pure): Ed25519 keys with ids that rotate, and the public document
that lists them with their status.

- Each key has an id (``kid``), the moment it was created, the moment it was retired (a
  newer key took over signing) and, if it was compromised, the moment from which it is
  revoked (``revoked_after``). The current key is the one not retired; it alone signs.
- A retired key still verifies what it signed. A revoked key verifies what it signed up to
  ``revoked_after``; a proof created (or a credential valid from) after that is refused
  as signed by a revoked key.
- The private part of a key is kept wrapped (AES-256-GCM, the key id as associated data)
  by a wrapping key derived from the ``ILA_CREDENTIAL_KEY_SEED`` setting: a copy of the
  database alone signs nothing.
- The issuer's keys document (:func:`keys_document`) is a W3C controller document
  (Controlled Identifiers 1.0): the issuer's id, each key as a ``Multikey`` with its
  ``publicKeyMultibase`` and JWK, its ``created``, and ``revoked`` for a revoked key. A
  verifier fetches it once and caches it (:mod:`.verifier` reads it back).

The first key of a deployment is the key the seed always derived (:func:`bootstrap`), so
that every credential issued before keys had ids (named by its ``did:key``) still verifies;
the document lists that ``did:key`` under ``alsoKnownAs``.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from services.catalogue.domain.credentials.signing import (
    ED25519_MULTICODEC,
    IssuerKey,
    b58encode,
    did_key,
    iso,
)

KID = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
BOOTSTRAP_KID = "k0"
CONTEXTS = ["https://www.w3.org/ns/cid/v1", "https://w3id.org/security/multikey/v1"]


@dataclass(frozen=True)
class KeyRecord:
    """One key of the keyring as stored: public part, wrapped private part, status."""

    kid: str
    public_key: bytes
    wrapped_private: bytes
    created_at: datetime
    retired_at: datetime | None = None
    revoked_after: datetime | None = None

    @property
    def did(self) -> str:
        return did_key(Ed25519PublicKey.from_public_bytes(self.public_key))

    def status(self) -> str:
        if self.revoked_after is not None:
            return "revoked"
        return "retired" if self.retired_at is not None else "current"


def wrapping_key(seed: str) -> bytes:
    """The AES-256 key that wraps the private keys, derived from the seed (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"ila-catalogue",
        info=b"issuer key wrapping v1",
    ).derive(seed.encode("utf-8"))


def wrap(private: Ed25519PrivateKey, kid: str, key: bytes) -> bytes:
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, raw, kid.encode())


def unwrap(record: KeyRecord, key: bytes) -> Ed25519PrivateKey:
    """The private key of ``record``; ValueError if the wrapping key is not the one it was
    wrapped with (the seed changed: rotate to a new key)."""
    blob = record.wrapped_private
    try:
        raw = AESGCM(key).decrypt(blob[:12], blob[12:], record.kid.encode())
    except InvalidTag:
        raise ValueError(
            f"issuer key {record.kid} cannot be unwrapped with ILA_CREDENTIAL_KEY_SEED"
        ) from None
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if _raw_public(private.public_key()) != record.public_key:
        raise ValueError(f"issuer key {record.kid}: private and public parts differ")
    return private


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def new_key(kid: str, now: datetime, wrapping: bytes) -> KeyRecord:
    """A fresh random key, wrapped."""
    if not KID.fullmatch(kid):
        raise ValueError("a key id is 1 to 40 letters, digits, '.', '_' or '-'")
    private = Ed25519PrivateKey.generate()
    return KeyRecord(kid, _raw_public(private.public_key()), wrap(private, kid, wrapping), now)


def bootstrap(derived: IssuerKey, wrapping: bytes, now: datetime) -> KeyRecord:
    """The first key: the one the seed always derived (credentials issued before keys had
    ids name it by its ``did:key``)."""
    private = derived.private
    return KeyRecord(
        BOOTSTRAP_KID,
        _raw_public(private.public_key()),
        wrap(private, BOOTSTRAP_KID, wrapping),
        now,
    )


def kid_for(now: datetime) -> str:
    """A new key's id: its creation date and a random suffix."""
    return f"k{now:%Y%m%d}-{os.urandom(3).hex()}"


def method_id(issuer_id: str, kid: str) -> str:
    return f"{issuer_id}#{kid}"


def signing_key(issuer_id: str, record: KeyRecord, wrapping: bytes) -> IssuerKey:
    """The current key, ready to sign: its proofs name ``<issuer>#<kid>``."""
    return IssuerKey(unwrap(record, wrapping), record.did, method=method_id(issuer_id, record.kid))


def public_multibase(public_key: bytes) -> str:
    return "z" + b58encode(ED25519_MULTICODEC + public_key)


def keys_document(issuer_id: str, name: str, records: list[KeyRecord]) -> dict[str, Any]:
    """The issuer's public keys document: every key (current first), with its status."""
    ordered = sorted(records, key=lambda r: (r.retired_at is None, r.created_at), reverse=True)
    methods: list[dict[str, Any]] = []
    for r in ordered:
        x = base64.urlsafe_b64encode(r.public_key).rstrip(b"=").decode()
        method: dict[str, Any] = {
            "id": method_id(issuer_id, r.kid),
            "type": "Multikey",
            "controller": issuer_id,
            "publicKeyMultibase": public_multibase(r.public_key),
            "publicKeyJwk": {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": x,
                "kid": method_id(issuer_id, r.kid),
            },
            "created": iso(r.created_at),
            "status": r.status(),
        }
        if r.retired_at is not None:
            method["retired"] = iso(r.retired_at)
        if r.revoked_after is not None:
            method["revoked"] = iso(r.revoked_after)
        methods.append(method)
    return {
        "@context": list(CONTEXTS),
        "id": issuer_id,
        "name": name,
        "alsoKnownAs": [r.did for r in ordered],
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }
