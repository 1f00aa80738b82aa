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

That is Python's ``json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``, which :func:`shared.canonical.canonical_json` writes with orjson
where orjson gives the same bytes and with ``json.dumps`` itself otherwise, so no hash ever
depends on the encoder (``tests/unit/ledger/test_chain.py`` compares the two).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.canonical import canonical_json, read_plain

GENESIS = "0" * 64


def rfc3339(instant: datetime) -> str:
    if instant.tzinfo is UTC and instant.year >= 1000:
        # the same text, faster (the database gives its instants in UTC)
        return instant.isoformat(timespec="microseconds")[:-6] + "Z"
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


__all__ = [
    "GENESIS",
    "canonical_bytes",
    "canonical_json",
    "chain_hash",
    "read_plain",
    "rfc3339",
]
