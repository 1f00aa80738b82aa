"""Signing micro-credentials: canonical JSON, did:key, the eddsa-jcs-2022 proof."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.catalogue.credentials import document, signing
from tests.integration.catalogue.helpers import course_body

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_canonical_json_follows_rfc_8785() -> None:
    assert signing.canonical_json({"b": [1, 2.0, None, True], "a": "x"}) == (
        b'{"a":"x","b":[1,2,null,true]}'
    )
    assert signing.canonical_json({"é": "\n\u0001", "z": 2.5}) == (
        '{"z":2.5,"é":"\\n\\u0001"}'.encode()
    )
    # keys sort by UTF-16 code units: U+FB01 (one unit) after U+1F600 (surrogates D83D...)
    assert signing.canonical_json({"\ufb01": 1, "\U0001f600": 2}) == (
        '{"\U0001f600":2,"\ufb01":1}'.encode()
    )
    with pytest.raises(ValueError):
        signing.canonical_json({"n": float("nan")})
    with pytest.raises(ValueError):
        signing.canonical_json({"n": 2**60})


def test_base58_round_trip_and_did_key() -> None:
    for raw in (b"", b"\0\0\x01", bytes(range(40))):
        assert signing.b58decode(signing.b58encode(raw)) == raw
    key = signing.derive_issuer_key("seed")
    assert key.did.startswith("did:key:z6Mk")  # the multicodec prefix of Ed25519 keys
    assert signing.derive_issuer_key("seed").did == key.did  # derived, not random
    assert signing.derive_issuer_key("other").did != key.did
    public = signing.public_key_of_did(key.did)
    assert public.public_bytes_raw() == key.private.public_key().public_bytes_raw()


def _credential() -> dict[str, object]:
    content = course_body()
    content["sessions"] = []
    return document.build(
        uuid.uuid4(),
        document.Issuer("did:key:placeholder", "ILA"),
        NOW,
        uuid.uuid4(),
        2,
        content,
        "Atelier",
        document.Completion(uuid.uuid4(), uuid.uuid4(), NOW, 100, "B"),
    )


def test_document_carries_every_element_of_the_recommendation() -> None:
    doc = _credential()
    mc = doc["credentialSubject"]["microCredential"]  # type: ignore[index]
    for element in document.MANDATORY_ELEMENTS:
        assert mc[element], element
    for element in document.OPTIONAL_ELEMENTS:
        assert element in mc
    assert mc["grade"] == "B" and mc["dateOfIssuing"] == "2026-06-01T12:00:00Z"


def test_sign_and_verify() -> None:
    key = signing.derive_issuer_key("seed")
    doc = {**_credential(), "issuer": {"id": key.did}}
    signed = signing.sign(doc, key, NOW)
    result = signing.verify(signed, key.did)
    assert result.errors == [] and result.checks["signature"] == "ok"
    # key order and whitespace do not matter
    again = json.loads(json.dumps(signed, indent=1, sort_keys=True))
    assert signing.verify(again, key.did).errors == []
    # any change of a value, or of the proof options, does
    changed = json.loads(json.dumps(signed))
    changed["validFrom"] = "2026-06-02T12:00:00Z"
    assert signing.verify(changed, key.did).checks["signature"] == "failed"
    changed = json.loads(json.dumps(signed))
    changed["proof"]["created"] = "2030-01-01T00:00:00Z"
    assert signing.verify(changed, key.did).checks["signature"] == "failed"
    # a foreign key is not this issuer
    stranger = signing.IssuerKey(
        Ed25519PrivateKey.generate(), signing.did_key(Ed25519PrivateKey.generate().public_key())
    )
    assert signing.verify(signed, stranger.did).checks["issuer"] == "unknown"
    garbled = json.loads(json.dumps(signed))
    garbled["proof"]["proofValue"] = "z0OIl"
    assert signing.verify(garbled, key.did).checks["signature"] == "failed"
