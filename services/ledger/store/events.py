"""The ledger's event store: each account's stream, chained by hash (:mod:`.chain`), and
its head (version and last hash) kept on the wallet row and locked for each append.

Appends take a shared advisory lock (``APPEND_LOCK``) for the rest of their transaction, so
that a reader of the global order (:func:`services.ledger.store.audit.horizon`) can tell
when nothing below a position can still commit. A concurrent writer of the same stream
version fails on the ``(stream_id, version)`` key: optimistic concurrency.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.store.chain import GENESIS, canonical_bytes, chain_hash
from shared.db import driver, fetch_all, locked
from shared.events import Envelope, Event, UnknownEventType
from shared.events.base import typed_payload
from shared.events.ledger import LedgerEvent

APPEND_LOCK = (727, 1)  # (classid, objid) of the advisory lock appenders share


@dataclass(frozen=True)
class EventRow:
    position: int
    event_id: uuid.UUID
    stream_id: uuid.UUID
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str

    def payload(self) -> LedgerEvent:
        """The event, read through the upcasters: a row stored as an older version (a
        ``ProfileNoted`` v1 with need flags, a ``WalletSuspended`` v1 with free text) loads
        as the newest form, while the stored form, which the hash chain covers, stays."""
        event = self.fact()
        assert isinstance(event, LedgerEvent)
        return event

    def fact(self) -> Event:
        """The event of any stream (a wallet's, or a funder's budget's), upcast."""
        try:
            return typed_payload(self.type, self.data)
        except UnknownEventType:
            raise ValueError(
                f"unknown event type {self.type} at position {self.position}"
            ) from None

    def canonical(self) -> bytes:
        return canonical_bytes(
            event_id=self.event_id,
            stream_id=self.stream_id,
            version=self.version,
            type=self.type,
            schema_version=self.schema_version,
            recorded_at=self.recorded_at,
            data=self.data,
            metadata=self.metadata,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "account_id": str(self.stream_id),
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


EVENT_COLUMNS = (
    "position, event_id, stream_id, version, type, schema_version, data, metadata, "
    "recorded_at, prev_hash, hash"
)


def event_row(r: Any) -> EventRow:
    return EventRow(**dict(r._mapping))


class Head(NamedTuple):
    """A stream's head: its version and last hash (a tuple: a batch reads thousands)."""

    version: int
    hash: str


async def lock_head(session: AsyncSession, account_id: uuid.UUID) -> Head | None:
    row = (
        await session.execute(
            text("SELECT version, head_hash FROM ledger.wallets WHERE account_id = :a FOR UPDATE"),
            {"a": account_id},
        )
    ).one_or_none()
    return Head(row.version, row.head_hash) if row else None


async def lock_heads(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Head]:
    """Take the shared append lock, then lock the wallet rows of ``account_ids`` in account
    order, in one statement (the lock is a one-time filter evaluated before the scan; rows
    are locked as the sorted scan reaches them, so two such batches never deadlock);
    accounts without a wallet are absent from the answer."""
    rows = await (await driver(session)).fetch(
        LOCK_HEADS, list(account_ids), APPEND_LOCK[0], APPEND_LOCK[1]
    )
    return {r["account_id"]: Head(r["version"], r["head_hash"]) for r in rows}


LOCK_HEADS = (
    "SELECT account_id, version, head_hash FROM ledger.wallets WHERE account_id = ANY($1) "
    "AND (SELECT pg_advisory_xact_lock_shared($2::int, $3::int)::text) IS NOT NULL "
    "ORDER BY account_id FOR UPDATE"
)


async def load_stream(
    session: AsyncSession, account_id: uuid.UUID, *, upto: datetime | None = None
) -> list[EventRow]:
    sql = f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE stream_id = :a"
    params: dict[str, Any] = {"a": account_id}
    if upto is not None:
        sql += " AND recorded_at <= :upto"
        params["upto"] = upto
    return await fetch_all(session, EventRow, sql + " ORDER BY version", params)


async def load_streams_after(
    session: AsyncSession, after: Mapping[uuid.UUID, int]
) -> dict[uuid.UUID, list[EventRow]]:
    """Each stream's events after the version ``after`` names for it (0: the whole stream),
    in version order, all in one statement."""
    out: dict[uuid.UUID, list[EventRow]] = {a: [] for a in after}
    if not after:
        return out
    ids = list(after)
    # on the driver: a batch of streams is read per transaction by the allocation run and
    # group commits, where building rows through SQLAlchemy showed in the profile
    conn = await driver(session)
    for record in await conn.fetch(LOAD_STREAMS_AFTER, ids, [after[a] for a in ids]):
        row = EventRow(*record)
        out[row.stream_id].append(row)
    for rows in out.values():
        rows.sort(key=_version)  # in order already as the index gives them: a pass each
    return out


_version = attrgetter("version")


LOAD_STREAMS_AFTER = (
    f"SELECT {EVENT_COLUMNS} FROM unnest($1::uuid[], $2::int[]) AS s(sid, after_version) "
    "JOIN ledger.events ON stream_id = sid AND version > after_version"
)
"""Without ``ORDER BY``: sorting a batch's rows in the database took longer than the join."""


async def entries(
    session: AsyncSession, account_id: uuid.UUID, after_version: int, limit: int
) -> list[EventRow]:
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE stream_id = :a AND version > :v "
        "ORDER BY version LIMIT :n"
    )
    return await fetch_all(
        session, EventRow, sql, {"a": account_id, "v": after_version, "n": limit}
    )


async def lock_heads_batch(
    session: AsyncSession, after: uuid.UUID | None, limit: int, *, lock: bool = True
) -> list[tuple[uuid.UUID, Head]]:
    """The next wallets by account id that may receive a statutory grant, locked (``lock``)
    or only read (the allocation reading its next batch ahead)."""
    sql = locked(
        "SELECT account_id, version, head_hash FROM ledger.wallets WHERE status IN "
        "('open', 'suspended') AND account_id > $1 ORDER BY account_id LIMIT $2",
        lock,
    )
    rows = await (await driver(session)).fetch(sql, after or uuid.UUID(int=0), limit)
    return [(r[0], Head(r[1], r[2])) for r in rows]


def build_rows(
    account_id: uuid.UUID,
    head: Head | None,
    envelopes: Sequence[Envelope],
    recorded_at: datetime,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    """The rows to insert for ``envelopes`` after ``head``, each chained to the last."""
    version = head.version if head else 0
    prev = head.hash if head else GENESIS
    rows = []
    for env in envelopes:
        version += 1
        metadata: dict[str, Any] = {
            "correlation_id": str(env.correlationid),
            "causation_id": str(env.causationid) if env.causationid else None,
            "actor": env.actor,
            "idempotency_key": idempotency_key,
        }
        canonical = canonical_bytes(
            event_id=env.id,
            stream_id=account_id,
            version=version,
            type=env.type,
            schema_version=env.schemaversion,
            recorded_at=recorded_at,
            data=env.data,
            metadata=metadata,
        )
        digest = chain_hash(prev, canonical)
        rows.append(
            {
                "event_id": env.id,
                "stream_id": account_id,
                "version": version,
                "type": env.type,
                "schema_version": env.schemaversion,
                "data": json.dumps(env.data, ensure_ascii=False),
                "metadata": json.dumps(metadata),
                "recorded_at": recorded_at,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return rows


async def take_append_lock(session: AsyncSession) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:c, :o)"),
        {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
    )
