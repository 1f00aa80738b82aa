"""The hash chain of each ledger stream, in a form an outside auditor can recompute.

Canonical bytes of an event: the UTF-8 JSON of the object

    {"data": ..., "event_id": "<uuid>", "metadata": {...}, "recorded_at": "<RFC 3339, UTC,
     microseconds, 'Z'>", "schema_version": <int>, "stream_id": "<uuid>", "type": "...",
     "version": <int>}

with keys sorted at every level, separators "," and ":" and no other whitespace, non-ASCII
characters written as themselves. All amounts are integers, so no float formatting enters.

    hash = SHA-256( prev_hash_hex || "\n" || canonical_bytes )   (lower-case hex)

where ``prev_hash`` is the previous event's hash in the same stream, and 64 zeros for the
first event (version 1). Streams chain independently, so they verify in parallel.

The bytes are written by orjson where it writes exactly what the definition above (Python's
``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``) writes: a
document of dicts with string keys, lists, strings, integers of at most 64 bits, booleans
and nulls. Anything else (a float, which the two format differently; an integer orjson
cannot hold; another type) goes through ``json.dumps`` itself, so no hash ever depends on
the encoder (``tests/unit/ledger/test_chain.py`` compares the two).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64


def rfc3339(instant: datetime) -> str:
    if instant.tzinfo is UTC and instant.year >= 1000:
        # the same text, faster (the database gives its instants in UTC)
        return instant.isoformat(timespec="microseconds")[:-6] + "Z"
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
_MAX_DEPTH = 200  # orjson refuses documents nested deeper than 254 levels


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether orjson writes ``value`` byte for byte as ``json.dumps`` does."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT64_MIN <= value <= _UINT64_MAX)
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_plain(item, depth + 1) for item in value)
    return False


def canonical_json(doc: dict[str, Any], *, plain: bool = False) -> bytes:
    """``doc``'s canonical JSON: keys sorted at every level, no whitespace, UTF-8.
    ``plain``: the caller knows that orjson writes ``doc`` as ``json.dumps`` does (its
    JSON values came from :func:`read_plain`, the rest are strings and small integers)."""
    if plain or _plain(doc):
        try:
            return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: json.dumps below refuses it (at .encode()) as before
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_plain(text: str | bytes) -> tuple[Any, bool]:
    """A stored JSON column's value as ``json.loads`` reads it, and whether orjson writes
    it as ``json.dumps`` does (orjson reads an integer beyond 64 bits as a float, so such
    a document, or one with floats, is read again by ``json.loads``)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text), False
    if _plain(value):
        return value, True
    return json.loads(text), False


def canonical_bytes(
    *,
    event_id: uuid.UUID,
    stream_id: uuid.UUID,
    version: int,
    type: str,
    schema_version: int,
    recorded_at: datetime,
    data: dict[str, Any],
    metadata: dict[str, Any],
) -> bytes:
    doc = {
        "data": data,
        "event_id": str(event_id),
        "metadata": metadata,
        "recorded_at": rfc3339(recorded_at),
        "schema_version": schema_version,
        "stream_id": str(stream_id),
        "type": type,
        "version": version,
    }
    return canonical_json(doc)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()
