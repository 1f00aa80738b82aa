"""Appends to many streams at once (the allocation run, bulk set-up): the rows of the
events, of the projections and of the outbox built straight into the columns of the one
statement that writes them (:func:`services.ledger.store.batch.write_columns`), without an
``Envelope`` model or a per-row dict on the way.

What it writes is what :func:`services.ledger.handlers.wallets.append_many` wrote through
``Envelope`` and ``build_rows``: the same chained rows (the canonical form of
:mod:`services.ledger.store.chain`), the same wallet and lot rows, the same outbox bodies
(CloudEvents JSON, keys sorted). Each stream's state after its events comes in already
folded, its invariants checked (``decide_folded``, ``allocate_folded``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from services.ledger.domain import WalletState, replay
from services.ledger.domain.invariants import assert_invariants
from services.ledger.handlers import Context
from services.ledger.store import batch as batch_store
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.chain import GENESIS, rfc3339
from services.ledger.store.events import Head
from shared.events.ledger import LedgerEvent

_SORTED = orjson.OPT_SORT_KEYS
_INSTANT = TypeAdapter(datetime)


def _json_instant(instant: datetime) -> str:
    """An instant as an event's JSON carries it (pydantic's form)."""
    text: str = _INSTANT.dump_python(instant, mode="json")
    return text


def _years(years: frozenset[int]) -> str:
    return "{" + ",".join(str(y) for y in sorted(years)) + "}"


def _wallet(after: WalletState, head_hash: str, now: datetime) -> tuple[Any, ...]:
    """The wallet row (columns of ``projections.WALLET_COLUMNS``, in order)."""
    profile = after.profile
    return (
        after.account_id,
        after.status,
        orjson.dumps(profile.model_dump(mode="json")).decode() if profile else None,
        after.version,
        head_hash,
        after.available,
        after.reserved,
        after.granted_total,
        after.spent_total,
        after.expired_total,
        _years(after.years_granted),
        now,
    )


class Columns:
    """The columns of one ``batch.write_columns`` statement, filled stream by stream."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.events: list[tuple[Any, ...]] = []  # rows, in EVENT_TYPES' order
        self.wallets: list[tuple[Any, ...]] = []
        self.lots: list[dict[str, Any]] = []
        self.reservations: list[dict[str, Any]] = []
        self.outbox: list[tuple[Any, ...]] = []  # rows, in OUTBOX_TYPES' order
        outbox = ctx.outbox
        meta = ctx.events
        self.correlation = str(meta.correlation_id)
        self.causation = str(meta.causation_id) if meta.causation_id else None
        self.actor = outbox.actor(meta.actor)
        self.metadata = {
            "correlation_id": str(meta.correlation_id),
            "causation_id": self.causation,
            "actor": self.actor,
            "idempotency_key": None,
        }
        self.metadata_text = orjson.dumps(self.metadata).decode()
        self.recorded = rfc3339(ctx.now)
        self.sent = _json_instant(datetime.now(UTC))  # the envelopes' time, one per batch
        self.changed: list[tuple[uuid.UUID, Head, WalletState]] = []

    def add(
        self,
        before: WalletState,
        head: Head | None,
        events: Sequence[LedgerEvent],
        after: WalletState,
    ) -> None:
        """Chain ``events`` after ``head`` on ``before``'s stream, ``after`` the state they
        leave (folded and checked by the caller)."""
        ctx, outbox = self.ctx, self.ctx.outbox
        account_id = events[0].account_id
        stream = str(account_id)
        version = head.version if head else 0
        prev = head.hash if head else GENESIS
        ev, ob = self.events, self.outbox
        for event in events:
            payload = outbox.pseudonymous(event)
            data = payload.model_dump(mode="json")
            event_id = uuid.uuid4()
            eid = str(event_id)
            version += 1
            ce_type = payload.cloudevent_type()
            schema = payload.schema_version
            canonical = orjson.dumps(
                {
                    "data": data,
                    "event_id": eid,
                    "metadata": self.metadata,
                    "recorded_at": self.recorded,
                    "schema_version": schema,
                    "stream_id": stream,
                    "type": ce_type,
                    "version": version,
                },
                option=_SORTED,
            )
            digest = hashlib.sha256(prev.encode() + b"\n" + canonical).hexdigest()
            ev.append(
                (
                    event_id,
                    account_id,
                    version,
                    ce_type,
                    schema,
                    orjson.dumps(data).decode(),
                    self.metadata_text,
                    ctx.now,
                    prev,
                    digest,
                )
            )
            subject = payload.aggregate_id()
            body = orjson.dumps(
                {
                    "actor": self.actor,
                    "causationid": self.causation,
                    "correlationid": self.correlation,
                    "data": data,
                    "datacontenttype": "application/json",
                    "id": eid,
                    "schemaversion": schema,
                    "source": outbox.source,
                    "specversion": "1.0",
                    "subject": subject,
                    "time": self.sent,
                    "type": ce_type,
                },
                option=_SORTED,
            )
            ob.append((event_id, outbox.topic, subject, ce_type, body))
            prev = digest
        if after.version != version:
            raise RuntimeError(f"wallet {account_id}: state after is not the head appended")
        self.wallets.append(_wallet(after, prev, ctx.now))
        lots, reservations = projections.changed_items(before, after)
        self.lots += lots
        self.reservations += reservations
        self.changed.append((account_id, Head(version, prev), after))

    async def write(self) -> int:
        """Write every row in one statement (the caller holds the heads' locks), stage the
        outbox, remember each state after; the number of events written."""
        if not self.changed:
            return 0
        ctx = self.ctx
        await event_store.take_append_lock(ctx.session)
        await batch_store.write_columns(
            ctx.session,
            f'"{ctx.outbox.service}".outbox',
            [
                *_transposed(self.events, batch_store.EVENT_TYPES),
                *_transposed(self.wallets, projections.WALLET_COLUMNS),
                *batch_store.columns(self.lots, projections.LOT_COLUMNS),
                *batch_store.columns(self.reservations, projections.RESERVATION_COLUMNS),
                *_transposed(self.outbox, batch_store.OUTBOX_TYPES),
            ],
        )
        ctx.outbox.staged(ctx.session)
        for account_id, head, after in self.changed:
            ctx.cache.put(account_id, head, after)
        return len(self.events)


def _transposed(rows: list[tuple[Any, ...]], types: dict[str, str]) -> list[list[Any]]:
    """``rows`` as the statement's columns of ``types``."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in types]


async def append_many(
    batch: Sequence[tuple[WalletState, Head | None, Sequence[LedgerEvent]]], ctx: Context
) -> int:
    """Append to many streams in one statement: each stream's events decided on its state
    (folded here once more, and checked, as ``decide`` checks them)."""
    columns = Columns(ctx)
    for state, head, events in batch:
        if events:
            after = replay(events, state)
            assert_invariants(after)
            columns.add(state, head, events, after)
    return await columns.write()
