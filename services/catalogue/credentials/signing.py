"""Ed25519 Data Integrity proofs over JSON canonicalised with RFC 8785 (JCS).

The proof follows the W3C ``eddsa-jcs-2022`` cryptosuite: the signature covers
``SHA-256(JCS(proof options)) || SHA-256(JCS(document without proof))``, so any change to
any value, key or the proof options themselves breaks it, while whitespace and key order
of the JSON a holder presents do not matter. The issuer key is derived from the
``credential_key_seed`` setting and named by a ``did:key`` identifier, which carries the
public key itself: anyone can check a signature without asking us, and only the revocation
check needs the catalogue.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
ED25519_MULTICODEC = b"\xed\x01"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
MAX_SAFE_INTEGER = 2**53 - 1


# -- RFC 8785 canonical JSON -----------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """RFC 8785 serialisation of JSON values (floats limited to those JCS and Python print
    alike: integral values and plain decimals, which is all a credential holds)."""
    return _jcs(value).encode("utf-8")


def _jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError("integers beyond 2^53 have no canonical JSON form")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinity are not JSON")
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        text = repr(value)
        if "e" in text or "E" in text:
            raise ValueError(f"no canonical form implemented for {text}")
        return text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("JSON object keys are strings")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_jcs(value[k])}" for k in keys)
            + "}"
        )
    raise ValueError(f"not a JSON value: {type(value).__name__}")


# -- base58btc and did:key -------------------------------------------------------------


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = B58.find(char)
        if index < 0:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def did_key(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "did:key:z" + b58encode(ED25519_MULTICODEC + raw)


def public_key_of_did(did: str) -> Ed25519PublicKey:
    if not did.startswith("did:key:z"):
        raise ValueError("not a did:key identifier")
    raw = b58decode(did.removeprefix("did:key:z"))
    if not raw.startswith(ED25519_MULTICODEC) or len(raw) != 34:
        raise ValueError("not an Ed25519 did:key")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


@dataclass(frozen=True)
class IssuerKey:
    private: Ed25519PrivateKey
    did: str

    @property
    def verification_method(self) -> str:
        return f"{self.did}#{self.did.removeprefix('did:key:')}"

    def public_multibase(self) -> str:
        return self.did.removeprefix("did:key:")

    def public_jwk(self) -> dict[str, str]:
        import base64

        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.verification_method}


def derive_issuer_key(seed: str) -> IssuerKey:
    """The issuer's Ed25519 key, derived from the configured seed (HKDF-SHA256)."""
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"ila-catalogue",
        info=b"micro-credential issuer ed25519 v1",
    ).derive(seed.encode("utf-8"))
    private = Ed25519PrivateKey.from_private_bytes(material)
    return IssuerKey(private, did_key(private.public_key()))


# -- proofs ----------------------------------------------------------------------------


def _hash_data(document: dict[str, Any], proof_options: dict[str, Any]) -> bytes:
    options = {k: v for k, v in proof_options.items() if k != "proofValue"}
    if "@context" in document:
        options["@context"] = document["@context"]
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return (
        hashlib.sha256(canonical_json(options)).digest()
        + hashlib.sha256(canonical_json(unsecured)).digest()
    )


def sign(document: dict[str, Any], key: IssuerKey, created: datetime) -> dict[str, Any]:
    """The document with a Data Integrity proof added."""
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verificationMethod": key.verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = key.private.sign(_hash_data(document, proof))
    proof["proofValue"] = "z" + b58encode(signature)
    return {**document, "proof": proof}


@dataclass
class Verification:
    """What a presented credential passed and failed (before the revocation check)."""

    checks: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    issuer: str | None = None

    def fail(self, check: str, outcome: str, message: str) -> None:
        self.checks[check] = outcome
        self.errors.append(message)


def verify(document: dict[str, Any], trusted_did: str) -> Verification:
    """Check the proof's form, the issuer key and the signature."""
    result = Verification()
    proof = document.get("proof")
    if not isinstance(proof, dict):
        result.fail("format", "failed", "the credential carries no proof")
        return result
    issuer = document.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    result.issuer = issuer_id if isinstance(issuer_id, str) else None
    method = proof.get("verificationMethod")
    value = proof.get("proofValue")
    if (
        proof.get("type") != PROOF_TYPE
        or proof.get("cryptosuite") != CRYPTOSUITE
        or proof.get("proofPurpose") != "assertionMethod"
        or not isinstance(method, str)
        or not isinstance(value, str)
        or not value.startswith("z")
    ):
        result.fail("format", "failed", f"the proof is not a {CRYPTOSUITE} {PROOF_TYPE}")
        return result
    result.checks["format"] = "ok"
    method_did = method.split("#", 1)[0]
    if method_did != trusted_did:
        result.fail("issuer", "unknown", f"the signing key {method_did} is not this issuer's key")
    elif result.issuer != trusted_did:
        result.fail("issuer", "mismatch", "the issuer named is not the key that signed")
    else:
        result.checks["issuer"] = "ok"
    try:
        public = public_key_of_did(method_did)
        public.verify(b58decode(value[1:]), _hash_data(document, proof))
        result.checks["signature"] = "ok"
    except InvalidSignature:
        result.fail("signature", "failed", "the signature does not match the content")
    except ValueError as exc:
        result.fail("signature", "failed", f"the signature cannot be checked: {exc}")
    return result
