"""Bitstring Status List encoding, index allocation, and offline verification with a
keyring whose keys rotate and are revoked from a date (pure)."""

from __future__ import annotations

import base64
import gzip
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.catalogue.domain.credentials import keyring, signing, status_list, verifier

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUER = "https://catalogue.example.eu/v1/credentials/issuer"
LIST = "https://catalogue.example.eu/v1/credentials/status/1"
WRAP = keyring.wrapping_key("seed")


def test_the_encoding_follows_the_spec() -> None:
    encoded = status_list.encode([0, 9, 131_071])
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) == 16 * 1024  # 131,072 entries, the minimum
    assert raw[0] == 0b1000_0000 and raw[1] == 0b0100_0000 and raw[-1] == 1  # left-most first
    bits = status_list.decode(encoded)
    assert [i for i in range(131_072) if status_list.bit(bits, i)] == [0, 9, 131_071]


def test_indices_are_scrambled_and_never_shared() -> None:
    indices = [status_list.index_for(c) for c in range(status_list.LIST_SIZE)]
    assert len(set(indices)) == status_list.LIST_SIZE
    assert abs(indices[1] - indices[0]) > 1000


def _signed(key: signing.IssuerKey, at: datetime, status: int | None = 5) -> dict[str, object]:
    doc: dict[str, object] = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:00000000-0000-0000-0000-000000000001",
        "type": ["VerifiableCredential"],
        "issuer": {"id": ISSUER},
        "validFrom": signing.iso(at),
        "credentialSubject": {"id": "urn:uuid:1"},
    }
    if status is not None:
        doc["credentialStatus"] = status_list.entry(LIST, status)
    return signing.sign(doc, key, at)


def test_offline_verification_with_rotation_and_key_revocation() -> None:
    k0 = keyring.new_key("k0", NOW, WRAP)
    key0 = keyring.signing_key(ISSUER, k0, WRAP)
    early = _signed(key0, NOW + timedelta(days=1))
    late = _signed(key0, NOW + timedelta(days=10))
    k1 = keyring.new_key("k1", NOW + timedelta(days=20), WRAP)
    key1 = keyring.signing_key(ISSUER, k1, WRAP)
    lists = {
        LIST: signing.sign(
            status_list.credential(LIST, {"id": ISSUER}, [7], NOW + timedelta(days=20)),
            key1,
            NOW + timedelta(days=20),
        )
    }
    retired = replace(k0, retired_at=NOW + timedelta(days=20))
    keys = keyring.keys_document(ISSUER, "Issuer", [retired, k1])
    # a retired key still verifies what it signed
    assert verifier.verify(early, keys, lists).valid
    assert verifier.verify(late, keys, lists).valid
    # revoked from day 5: what it signed before is valid, after is refused
    revoked = replace(retired, revoked_after=NOW + timedelta(days=5))
    keys = keyring.keys_document(ISSUER, "Issuer", [revoked, k1])
    assert verifier.verify(early, keys, lists).valid
    result = verifier.verify(late, keys, lists)
    assert not result.valid and result.checks["key"] == "revoked"
    assert result.checks["signature"] == "ok"
    # the bit of a revoked credential
    result = verifier.verify(_signed(key1, NOW + timedelta(days=21), status=7), keys, lists)
    assert result.revoked is True and result.checks["revocation"] == "revoked"
    # a key not in the document is not the issuer's
    stranger = keyring.signing_key(ISSUER, keyring.new_key("k9", NOW, WRAP), WRAP)
    assert verifier.verify(_signed(stranger, NOW), keys, lists).checks["issuer"] == "unknown"


def test_a_wrapped_key_needs_its_wrapping_key() -> None:
    record = keyring.new_key("k1", NOW, WRAP)
    assert keyring.unwrap(record, WRAP).public_key() is not None
    try:
        keyring.unwrap(record, keyring.wrapping_key("another seed"))
    except ValueError as exc:
        assert "cannot be unwrapped" in str(exc)
    else:
        raise AssertionError("unwrapped with the wrong key")
