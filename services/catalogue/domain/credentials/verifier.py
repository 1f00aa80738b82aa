"""Verifying a credential offline (pure): from the credential, the issuer's keys document
and the status list credentials a verifier fetched once and cached, never the network.

What is checked, each with its outcome in ``checks`` (and, when it fails, a sentence in
``errors``):

- ``format``: a proof of the ``eddsa-jcs-2022`` form we issue;
- ``issuer``: the proof's key is one of the issuer's keys (``<issuer>#<kid>``, or the
  ``did:key`` of a key listed under ``alsoKnownAs``) and the credential names that issuer;
  ``unknown`` when the key is not the issuer's, ``mismatch`` when another issuer is named;
- ``key``: the key's status; ``revoked`` when the key was revoked from a date and the proof
  was created (or the credential made valid) after it; a key retired by rotation still
  verifies what it signed;
- ``signature``: the proof's signature over the content;
- ``revocation``: the credential's bit in its Bitstring Status List (``credentialStatus``),
  read from the cached status list credential, whose own signature and key are checked the
  same way; ``unknown`` when no cached list covers it (the caller goes online, or says so).

Both formats the catalogue issues (Open Badges 3 and the European Learning Model) are
checked the same way: only the proof, the issuer, the dates and ``credentialStatus`` are
read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.catalogue.domain.credentials import status_list
from services.catalogue.domain.credentials.signing import (
    ED25519_MULTICODEC,
    MAX_DID_KEY_CHARS,
    Verification,
    b58decode,
    check_signature,
    issuer_of,
    proof_form_error,
    public_key_of_did,
)


@dataclass(frozen=True)
class PublishedKey:
    method: str
    public: Ed25519PublicKey
    multibase: str
    status: str
    revoked: datetime | None


@dataclass
class Result(Verification):
    """The checks of :func:`verify`, with what the verifier learned on the way."""

    key_id: str | None = None
    key_status: str | None = None
    revoked: bool | None = None
    status_list: str | None = None
    status_index: int | None = None
    list_valid_from: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors and self.checks.get("revocation") == "ok"

    def errors_by_check(self) -> set[str]:
        """The checks that did not pass."""
        return {check for check, outcome in self.checks.items() if outcome != "ok"}


def moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _public_of_multibase(value: Any) -> Ed25519PublicKey | None:
    if not isinstance(value, str) or not value.startswith("z"):
        return None
    try:
        raw = b58decode(value[1:], max_chars=MAX_DID_KEY_CHARS)
    except ValueError:
        return None
    if not raw.startswith(ED25519_MULTICODEC) or len(raw) != 34:
        return None
    return Ed25519PublicKey.from_public_bytes(raw[2:])


class IssuerKeys:
    """The issuer's keys document, read once (whatever is malformed in it is left out)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        issuer = document.get("id")
        self.issuer: str | None = issuer if isinstance(issuer, str) else None
        self.by_method: dict[str, PublishedKey] = {}
        self.by_multibase: dict[str, PublishedKey] = {}
        methods = document.get("verificationMethod")
        for m in methods if isinstance(methods, list) else []:
            if not isinstance(m, dict) or not isinstance(m.get("id"), str):
                continue
            public = _public_of_multibase(m.get("publicKeyMultibase"))
            if public is None or m.get("controller") != self.issuer:
                continue
            revoked = moment(m.get("revoked"))
            key = PublishedKey(
                m["id"],
                public,
                m["publicKeyMultibase"],
                "revoked" if revoked else str(m.get("status") or "current"),
                revoked,
            )
            self.by_method[key.method] = key
            self.by_multibase[key.multibase] = key

    def resolve(self, method: str) -> PublishedKey | None:
        """The issuer's key a proof names: by id, or by the did:key of a listed key."""
        if method in self.by_method:
            return self.by_method[method]
        did = method.split("#", 1)[0]
        if did.startswith("did:key:"):
            return self.by_multibase.get(did.removeprefix("did:key:"))
        return None

    def names_issuer(self, named: str | None, key: PublishedKey, method: str) -> bool:
        """The credential names this issuer: its id, or (a credential from before keys had
        ids) the did:key that signed it."""
        if named is not None and named == self.issuer:
            return True
        return method.startswith("did:key:") and named == "did:key:" + key.multibase


def signed_at(document: Mapping[str, Any]) -> datetime | None:
    """The latest of the moments the document says it was signed or made valid; None if
    one of them is given but unreadable (a revoked key then proves nothing)."""
    proof = document.get("proof")
    values = [
        proof.get("created") if isinstance(proof, dict) else None,
        document.get("validFrom"),
        document.get("issuanceDate"),
        document.get("issued"),
    ]
    moments = []
    for v in values:
        if v is None:
            continue
        m = moment(v)
        if m is None:
            return None
        moments.append(m)
    return max(moments) if moments else None


def check_proof(document: dict[str, Any], keys: IssuerKeys, result: Verification) -> None:
    """The form, issuer, key status and signature checks, recorded on ``result``."""
    result.issuer = issuer_of(document)
    problem = proof_form_error(document)
    if problem is not None:
        result.fail("format", "failed", problem)
        return
    result.checks["format"] = "ok"
    method: str = document["proof"]["verificationMethod"]
    key = keys.resolve(method)
    if key is None:
        result.fail("issuer", "unknown", f"the signing key {method} is not this issuer's key")
        if method.startswith("did:key:"):  # the signature can still be checked
            try:
                check_signature(result, document, public_key_of_did(method.split("#", 1)[0]))
            except ValueError as exc:
                result.fail("signature", "failed", f"the signature cannot be checked: {exc}")
        return
    if isinstance(result, Result):
        result.key_id, result.key_status = key.method, key.status
    if not keys.names_issuer(result.issuer, key, method):
        result.fail("issuer", "mismatch", "the issuer named is not the issuer whose key signed")
    else:
        result.checks["issuer"] = "ok"
    if key.revoked is None:
        result.checks["key"] = "ok"
    else:
        when = signed_at(document)
        if when is None or when > key.revoked:
            result.fail(
                "key",
                "revoked",
                f"revoked key: {key.method} is revoked from {key.revoked:%Y-%m-%dT%H:%M:%SZ}",
            )
        else:
            result.checks["key"] = "ok"
    check_signature(result, document, key.public)


def status_entry(document: Mapping[str, Any]) -> tuple[str, int] | None:
    entries = document.get("credentialStatus")
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or entry.get("statusPurpose") != "revocation":
            continue
        url, index = entry.get("statusListCredential"), entry.get("statusListIndex")
        if isinstance(url, str) and isinstance(index, str) and index.isdigit() and len(index) < 10:
            return url, int(index)
    return None


def check_status(
    document: Mapping[str, Any],
    keys: IssuerKeys,
    lists: Mapping[str, Mapping[str, Any]],
    result: Result,
) -> None:
    """The revocation check against the cached status list credentials (by URL)."""
    entry = status_entry(document)
    if entry is None:
        result.fail("revocation", "unknown", "the credential has no revocation status entry")
        return
    url, index = entry
    result.status_list, result.status_index = url, index
    cached = lists.get(url)
    if cached is None:
        result.fail("revocation", "unknown", f"no cached status list {url}")
        return
    listed = Verification()
    check_proof(dict(cached), keys, listed)
    if listed.errors:
        result.fail(
            "revocation", "unverified", "the status list's proof fails: " + "; ".join(listed.errors)
        )
        return
    try:
        bits = status_list.read(cached, url)
    except ValueError as exc:
        result.fail("revocation", "unverified", f"the status list cannot be read: {exc}")
        return
    result.list_valid_from = moment(cached.get("validFrom"))
    if index >= len(bits) * 8:
        result.fail("revocation", "unknown", "the status index is past the end of the list")
    elif status_list.bit(bits, index):
        result.revoked = True
        result.fail("revocation", "revoked", "the credential was revoked")
    else:
        result.revoked = False
        result.checks["revocation"] = "ok"


def verify(
    document: dict[str, Any],
    keys_document: Mapping[str, Any],
    status_lists: Mapping[str, Mapping[str, Any]],
) -> Result:
    """Verify ``document`` with nothing but the cached documents (no network)."""
    keys = IssuerKeys(keys_document)
    result = Result()
    check_proof(document, keys, result)
    if result.checks.get("format") == "ok":
        check_status(document, keys, status_lists, result)
    return result
