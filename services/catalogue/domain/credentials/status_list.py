"""W3C Bitstring Status List v1.0 (pure): revocation published as one bit per credential.

Each credential carries a ``credentialStatus`` entry (:func:`entry`) naming a status list
credential by URL and its index in it. The list (:func:`credential`) is a verifiable
credential whose ``encodedList`` is the GZIP-compressed bitstring, base64url-encoded with
no padding and the multibase prefix ``u``; the bitstring is at least 16 KB (131,072
entries), so that one credential's status hides among many. Bit 0 is the left-most bit of
the first byte. A set bit means revoked.

Indices are handed out in a scrambled order (:func:`index_for`): consecutive credentials
do not sit next to each other in the list, yet no two ever share an index.
"""

from __future__ import annotations

import base64
import gzip
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from services.catalogue.domain.credentials.signing import iso

LIST_SIZE = 131_072  # entries (bits): 16 KB, the spec's minimum
# an odd multiplier: counter -> counter * STRIDE mod LIST_SIZE is a bijection on the list
STRIDE = 0x9E3779B1 % LIST_SIZE | 1
TTL_MS = 300_000  # how long a verifier may cache the list (the ``ttl`` of the list)
MAX_ENCODED_CHARS = 1_000_000
MAX_BITSTRING_BYTES = 16 * 1024 * 1024


def index_for(counter: int, size: int = LIST_SIZE) -> int:
    """The index of the ``counter``-th credential of a list (0 <= counter < size)."""
    if not 0 <= counter < size:
        raise ValueError("the list is full")
    return (counter * STRIDE) % size


def entry(url: str, index: int) -> dict[str, Any]:
    """The ``credentialStatus`` of a credential at ``index`` of the list at ``url``."""
    return {
        "id": f"{url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(index),
        "statusListCredential": url,
    }


def encode(revoked: Iterable[int], size: int = LIST_SIZE) -> str:
    bits = bytearray(size // 8)
    for index in revoked:
        bits[index // 8] |= 0x80 >> (index % 8)
    return "u" + base64.urlsafe_b64encode(gzip.compress(bytes(bits), mtime=0)).rstrip(b"=").decode(
        "ascii"
    )


def decode(encoded: str) -> bytes:
    if not encoded.startswith("u") or len(encoded) > MAX_ENCODED_CHARS:
        raise ValueError("the encoded list is not multibase base64url ('u')")
    text = encoded[1:]
    try:
        compressed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as stream:
            bits = stream.read(MAX_BITSTRING_BYTES + 1)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"the encoded list is not GZIP base64url: {exc}") from exc
    if len(bits) > MAX_BITSTRING_BYTES:
        raise ValueError("the list is too large")
    return bits


def bit(bits: bytes, index: int) -> bool:
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def credential(
    url: str, issuer: Mapping[str, Any], revoked: Iterable[int], at: datetime
) -> dict[str, Any]:
    """The unsigned BitstringStatusListCredential of the list at ``url``."""
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": dict(issuer),
        "validFrom": iso(at),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode(revoked),
            "ttl": TTL_MS,
        },
    }


def read(document: Mapping[str, Any], url: str) -> bytes:
    """The bitstring of a status list credential fetched from ``url`` (its proof checked
    apart); ValueError if it is not the revocation list of that URL."""
    types = document.get("type")
    subject = document.get("credentialSubject")
    if not isinstance(types, list) or "BitstringStatusListCredential" not in types:
        raise ValueError("not a BitstringStatusListCredential")
    if document.get("id") != url or not isinstance(subject, dict):
        raise ValueError("not the status list the credential names")
    if subject.get("statusPurpose") != "revocation":
        raise ValueError("not a revocation list")
    encoded = subject.get("encodedList")
    if not isinstance(encoded, str):
        raise ValueError("the list has no encodedList")
    return decode(encoded)
