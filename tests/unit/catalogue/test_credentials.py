"""Signing micro-credentials: canonical JSON, did:key, the eddsa-jcs-2022 proof."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.catalogue.domain.credentials import document, signing
from tests.integration.support.catalogue import course_body

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
        document.Facts(
            uuid.uuid4(),
            document.Issuer("did:key:placeholder", "ILA"),
            NOW,
            uuid.uuid4(),
            2,
            content,
            "Atelier",
            {"type": "BitstringStatusListEntry"},
        ),
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


# Published test vectors: RFC 8785 section 3.2.2, and the W3C eddsa-jcs-2022 suite's key pair,
# document, proof options, document hash and combined hash (vc-di-eddsa, TestVectors/).
RFC8785_INPUT = (
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
    ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
    ' "literals": [null, true, false]}'
)
RFC8785_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)
W3C_PUBLIC_KEY = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
W3C_PRIVATE_KEY = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
W3C_SIGNED = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/examples/v2",
    ],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
    "proof": {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": f"did:key:{W3C_PUBLIC_KEY}#{W3C_PUBLIC_KEY}",
        "proofPurpose": "assertionMethod",
    },
}
W3C_COMBINED_HASH = (
    "66ab154f5c2890a140cb8388a22a160454f80575f6eae09e5a097cabe539a1db"
    "59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19"
)


def test_canonical_json_matches_the_rfc_8785_example() -> None:
    assert signing.canonical_json(json.loads(RFC8785_INPUT)) == RFC8785_OUTPUT.encode()


def test_the_w3c_eddsa_jcs_2022_vectors_hash_and_verify() -> None:
    # the key pair: the private key (multicodec 0x8026) gives the published did:key
    raw = signing.b58decode(W3C_PRIVATE_KEY[1:])
    assert raw[:2] == b"\x80\x26"
    private = Ed25519PrivateKey.from_private_bytes(raw[2:])
    assert signing.did_key(private.public_key()) == "did:key:" + W3C_PUBLIC_KEY
    # proof options (with the document's @context) and document hash as published
    proof = W3C_SIGNED["proof"]
    assert isinstance(proof, dict)
    assert signing._hash_data(W3C_SIGNED, proof).hex() == W3C_COMBINED_HASH
    # signed with that key, the proof verifies against its did:key; any change breaks it
    key = signing.IssuerKey(private, "did:key:" + W3C_PUBLIC_KEY)
    unsigned = {k: v for k, v in W3C_SIGNED.items() if k != "proof"}
    signed = signing.sign(unsigned, key, datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC))
    assert signing._hash_data(signed, signed["proof"]).hex() == W3C_COMBINED_HASH
    public = signing.public_key_of_did(key.did)
    public.verify(
        signing.b58decode(signed["proof"]["proofValue"][1:]), bytes.fromhex(W3C_COMBINED_HASH)
    )
    tampered = {**signed, "name": "Alumnus Credential"}
    assert signing._hash_data(tampered, signed["proof"]).hex() != W3C_COMBINED_HASH


def test_oversized_base58_is_refused_before_decoding() -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(ValueError):
        signing.public_key_of_did("did:key:z" + "2" * 1_500_000)
    with pytest.raises(ValueError):
        signing.b58decode("2" * 150_000)
    assert time.perf_counter() - started < 0.1
