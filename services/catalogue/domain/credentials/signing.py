"""Ed25519 Data Integrity proofs over JSON canonicalised with RFC 8785 (JCS).

The proof follows the W3C ``eddsa-jcs-2022`` cryptosuite: the signature covers
``SHA-256(JCS(proof options)) || SHA-256(JCS(document without proof))``, so any change to
any value, key or the proof options themselves breaks it, while whitespace and key order
of the JSON a holder presents do not matter. A proof names its key: ``<issuer>#<kid>`` for a
key of the issuer's keyring (:mod:`.keyring`, checked by :mod:`.verifier` against the
issuer's published keys document), or a ``did:key`` identifier, which carries the public
key itself (the credentials issued before keys had ids).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import base58
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
ED25519_MULTICODEC = b"\xed\x01"


# -- RFC 8785 canonical JSON and base58btc (maintained libraries) -----------------------

# A did:key of an Ed25519 key is 48 base58 characters and a signature about 88: anything
# much longer is refused before it is decoded (base58 decoding is quadratic in its length).
MAX_DID_KEY_CHARS = 64
MAX_PROOF_VALUE_CHARS = 128


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialisation, by the ``rfc8785`` library."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"no canonical JSON form: {exc}") from exc


def b58encode(data: bytes) -> str:
    return base58.b58encode(data).decode("ascii")


def b58decode(text: str, *, max_chars: int = MAX_PROOF_VALUE_CHARS) -> bytes:
    if len(text) > max_chars:
        raise ValueError(f"longer than {max_chars} base58 characters")
    try:
        return base58.b58decode(text)
    except ValueError as exc:
        raise ValueError(f"not base58: {exc}") from exc


def did_key(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "did:key:z" + b58encode(ED25519_MULTICODEC + raw)


def public_key_of_did(did: str) -> Ed25519PublicKey:
    if not did.startswith("did:key:z"):
        raise ValueError("not a did:key identifier")
    raw = b58decode(did.removeprefix("did:key:z"), max_chars=MAX_DID_KEY_CHARS)
    if not raw.startswith(ED25519_MULTICODEC) or len(raw) != 34:
        raise ValueError("not an Ed25519 did:key")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class IssuerKey:
    private: Ed25519PrivateKey
    did: str
    # what its proofs name as their verification method: ``<issuer>#<kid>`` for a key of the
    # keyring; by default its did:key (``did:key:z...#z...``)
    method: str | None = None

    @property
    def verification_method(self) -> str:
        return self.method or f"{self.did}#{self.did.removeprefix('did:key:')}"

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
        "created": iso(created),
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
    """Check the proof's form, the issuer key and the signature, for an issuer of one
    ``did:key`` (the keyring's issuer is checked by :mod:`.verifier`)."""
    result = Verification()
    result.issuer = issuer_of(document)
    problem = proof_form_error(document)
    if problem is not None:
        result.fail("format", "failed", problem)
        return result
    method: str = document["proof"]["verificationMethod"]
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
    except ValueError as exc:
        result.fail("signature", "failed", f"the signature cannot be checked: {exc}")
        return result
    check_signature(result, document, public)
    return result


def issuer_of(document: dict[str, Any]) -> str | None:
    issuer = document.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    return issuer_id if isinstance(issuer_id, str) else None


def proof_form_error(document: dict[str, Any]) -> str | None:
    """What is wrong with the form of the document's proof, or None."""
    proof = document.get("proof")
    if not isinstance(proof, dict):
        return "the credential carries no proof"
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
        return f"the proof is not a {CRYPTOSUITE} {PROOF_TYPE}"
    return None


def check_signature(
    result: Verification, document: dict[str, Any], public: Ed25519PublicKey
) -> None:
    """Record on ``result`` whether the proof's signature is ``public``'s over ``document``
    (the proof's form already checked)."""
    proof = document["proof"]
    try:
        public.verify(
            b58decode(proof["proofValue"][1:], max_chars=MAX_PROOF_VALUE_CHARS),
            _hash_data(document, proof),
        )
        result.checks["signature"] = "ok"
    except InvalidSignature:
        result.fail("signature", "failed", "the signature does not match the content")
    except ValueError as exc:
        result.fail("signature", "failed", f"the signature cannot be checked: {exc}")
