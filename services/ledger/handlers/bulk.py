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
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from services.ledger.domain import WalletState, replay
from services.ledger.domain.invariants import assert_invariants
from services.ledger.domain.statutory import StatutoryTerms
from services.ledger.handlers import Context
from services.ledger.store import batch as batch_store
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.chain import GENESIS, canonical_json, rfc3339
from services.ledger.store.events import Head
from shared.events import Envelope
from shared.events.base import actor_fields
from shared.events.ledger import CreditsGranted, LedgerEvent, WalletOpened
from shared.outbox import EventContext, Outbox

_SORTED = orjson.OPT_SORT_KEYS
_INSTANT = TypeAdapter(datetime)


def _json_instant(instant: datetime) -> str:
    """An instant as an event's JSON carries it (pydantic's form)."""
    text: str = _INSTANT.dump_python(instant, mode="json")
    return text


def _years(years: frozenset[int]) -> str:
    """``years`` as an int[] literal (remembered: a batch's wallets share a few sets)."""
    text = _YEARS.get(years)
    if text is None:
        if len(_YEARS) >= 1024:
            _YEARS.clear()
        text = _YEARS[years] = "{" + ",".join(str(y) for y in sorted(years)) + "}"
    return text


_YEARS: dict[frozenset[int], str] = {}


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

    def __init__(self, ctx: Context, *, bulk: bool = False) -> None:
        self.ctx = ctx
        # every outbox row bulk (the allocation's), else those of the BULK events only
        self.bulk = bulk
        self.events: list[tuple[Any, ...]] = []  # rows, in EVENT_TYPES' order
        self.wallets: list[tuple[Any, ...]] = []
        self.lots: list[dict[str, Any]] = []
        self.reservations: list[dict[str, Any]] = []
        self.outbox: list[tuple[Any, ...]] = []  # rows, in OUTBOX_TYPES' order
        self._meta: dict[tuple[EventContext, str | None], _Meta] = {}
        self.batch = self.meta(ctx.events, None)  # the context's own: the allocation's
        self.recorded = rfc3339(ctx.now)
        self.sent = _json_instant(datetime.now(UTC))  # the envelopes' time, one per batch
        self.changed: list[tuple[uuid.UUID, Head, WalletState]] = []
        self._grant: _GrantText | None = None

    def add_grant(
        self,
        head: Head | None,
        lot_id: uuid.UUID,
        amount: int,
        after: WalletState,
        terms: StatutoryTerms,
        allocation_id: uuid.UUID | None,
        event_id: str,
    ) -> None:
        """:meth:`add` of the statutory ``CreditsGranted`` that ``after`` folded
        (``domain.statutory.statutory_grant``), its rows written straight from the few
        values that vary from wallet to wallet: the same bytes, hash and rows as ``add``
        (``event_id``: a new id's text, see :func:`new_ids`)."""
        text = self._grant
        if text is None or text.terms is not terms or text.allocation_id != allocation_id:
            text = self._grant = _GrantText(self, terms, allocation_id)
        account_id = after.account_id
        assert account_id is not None  # a granted wallet has its account
        account = str(account_id)
        version = head.version + 1 if head else 1
        prev = head.hash if head else GENESIS
        if after.version != version:
            raise RuntimeError(f"wallet {account_id}: state after is not the head appended")
        data = (
            f'{{"account_id":"{account}",{text.allocation}"amount":{amount:d},{text.middle}'
            f'"lot_id":"{lot_id}",{text.tail}'
        )
        canonical = (
            f'{{"data":{data},"event_id":"{event_id}",{text.metadata}'
            f'"stream_id":"{account}",{text.event_type}"version":{version:d}}}'
        )
        digest = hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()
        now = self.ctx.now
        self.events.append(
            (
                event_id,
                account_id,
                version,
                _GRANTED_TYPE,
                _GRANTED_SCHEMA,
                data,
                self.batch.text,
                now,
                prev,
                digest,
            )
        )
        body = (
            f'{text.envelope}"data":{data},"datacontenttype":"application/json",'
            f'"id":"{event_id}",{text.source}"subject":"{account}",{text.sent}'
        )
        self.outbox.append((event_id, text.topic, account, _GRANTED_TYPE, body.encode(), self.bulk))
        self.wallets.append(_wallet(after, digest, now))
        self.lots.append(
            {
                "lot_id": lot_id,
                "account_id": account_id,
                "funder_id": terms.funder_id,
                "kind": "statutory",
                "year": terms.year,
                "amount": amount,
                "remaining": amount,
                "reserved": 0,
                "spent": 0,
                "expired": 0,
                "expires_at": terms.expires_at,
                "earmark": None,
                "reason": "statutory",
                "granted_at": after.lots[lot_id].granted_at,
            }
        )
        self.changed.append((account_id, Head(version, digest), after))

    def meta(self, events: EventContext, idempotency_key: str | None) -> _Meta:
        """What the events of one command record of their cause (remembered per cause)."""
        found = self._meta.get((events, idempotency_key))
        if found is None:
            found = self._meta[(events, idempotency_key)] = _Meta(
                self.ctx.outbox, events, idempotency_key
            )
        return found

    def add(
        self,
        before: WalletState,
        head: Head | None,
        events: Sequence[LedgerEvent],
        after: WalletState,
    ) -> None:
        """Chain ``events`` after ``head`` on ``before``'s stream, ``after`` the state they
        leave (folded and checked by the caller)."""
        head = self.chain(head, events)
        if after.version != head.version:
            raise RuntimeError(f"wallet {after.account_id}: state after is not the head appended")
        self.project(before, after, head)

    def chain(
        self,
        head: Head | None,
        events: Sequence[LedgerEvent],
        caused: EventContext | None = None,
        idempotency_key: str | None = None,
    ) -> Head:
        """The rows of ``events`` (one stream's) chained after ``head``, their outbox rows,
        with what ``caused`` them (None: the context's) and the request's key; the new head.
        The stream's projection rows are the caller's (:meth:`project`), once per batch."""
        ctx, outbox = self.ctx, self.ctx.outbox
        meta = self.meta(caused or ctx.events, idempotency_key)
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
            # ledger events hold strings, integers, booleans and nulls only (money is a
            # strict int): orjson writes them as the chain's definition does
            canonical = canonical_json(
                {
                    "data": data,
                    "event_id": eid,
                    "metadata": meta.metadata,
                    "recorded_at": self.recorded,
                    "schema_version": schema,
                    "stream_id": stream,
                    "type": ce_type,
                    "version": version,
                },
                plain=True,
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
                    meta.text,
                    ctx.now,
                    prev,
                    digest,
                )
            )
            subject = payload.aggregate_id()
            body = orjson.dumps(
                {
                    "actor": meta.actor,
                    "causationid": meta.causation,
                    "correlationid": meta.correlation,
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
            ob.append(
                (event_id, outbox.topic, subject, ce_type, body, self.bulk or type(event) in BULK)
            )
            prev = digest
        return Head(version, prev)

    def project(self, before: WalletState, after: WalletState, head: Head) -> None:
        """The wallet, lot and reservation rows that changed from ``before`` to ``after``
        (its events chained up to ``head``); ``after`` is remembered once written."""
        account_id = after.account_id
        assert account_id is not None  # a changed wallet has its account
        self.wallets.append(_wallet(after, head.hash, self.ctx.now))
        lots, reservations = projections.changed_items(before, after)
        self.lots += lots
        self.reservations += reservations
        self.changed.append((account_id, head, after))

    def add_rows(self, rows: Sequence[dict[str, Any]], envelopes: Sequence[Envelope]) -> None:
        """Event rows built elsewhere (``event_store.build_rows``: a budget's draws) and the
        envelopes to stage with them."""
        self.events += [tuple(r[c] for c in batch_store.EVENT_TYPES) for r in rows]
        outbox = self.ctx.outbox
        self.outbox += [
            tuple(r[c] for c in batch_store.OUTBOX_TYPES) for r in outbox.rows(envelopes)
        ]

    async def write(self, *, locked: bool = False) -> int:
        """Write every row in one statement (the caller holds the heads' locks and, when
        ``locked``, the append lock), stage the outbox, remember each state after; the
        number of events written."""
        if not self.events:
            return 0
        ctx = self.ctx
        if not locked:
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


BULK: frozenset[type[LedgerEvent]] = frozenset({WalletOpened})
"""Events whose outbox rows are always bulk (they give way to the others, see
:class:`shared.outbox.Relay`): no service reacts to a wallet's opening, and they come by
the million when agencies onboard their people. A later event of the same wallet still
follows it (the relay keeps each key's order)."""
_GRANTED_TYPE = CreditsGranted.cloudevent_type()
_GRANTED_SCHEMA = CreditsGranted.schema_version
if actor_fields(CreditsGranted):  # add_grant writes the payload as it is, no pseudonym
    raise RuntimeError("CreditsGranted names an actor: add_grant must pseudonymise it")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class _Meta:
    """What one command's events record of their cause: the metadata the chain hashes (and
    its stored text), and the envelope's correlation, causation and actor."""

    def __init__(self, outbox: Outbox, events: EventContext, idempotency_key: str | None):
        self.correlation = str(events.correlation_id)
        self.causation = str(events.causation_id) if events.causation_id else None
        self.actor = outbox.actor(events.actor)
        self.metadata = {
            "correlation_id": self.correlation,
            "causation_id": self.causation,
            "actor": self.actor,
            "idempotency_key": idempotency_key,
        }
        self.text = orjson.dumps(self.metadata).decode()


class _GrantText:
    """The parts of a statutory grant's texts that are the same for every wallet of a
    batch, JSON-encoded once, in the canonical (sorted-key) order: the payload, whose keys
    sort the same way in the stored data, the hashed document and the outbox body."""

    def __init__(
        self, columns: Columns, terms: StatutoryTerms, allocation_id: uuid.UUID | None
    ) -> None:
        self.terms, self.allocation_id = terms, allocation_id
        ctx = columns.ctx
        occurred = _json_instant(ctx.now)
        expires = None if terms.expires_at is None else _json_instant(terms.expires_at)
        aid = None if allocation_id is None else str(allocation_id)
        # account_id < allocation_id < amount < earmark < expires_at < funder_id < kind
        # < lot_id < occurred_at < reason_code < year
        self.allocation = f'"allocation_id":{_json(aid)},'
        self.middle = (
            f'"earmark":null,"expires_at":{_json(expires)},"funder_id":{_json(terms.funder_id)},'
            '"kind":"statutory",'
        )
        self.tail = (
            f'"occurred_at":{_json(occurred)},"reason_code":"statutory","year":{terms.year:d}}}'
        )
        # data < event_id < metadata < recorded_at < schema_version < stream_id < type < version
        self.metadata = (
            f'"metadata":{orjson.dumps(columns.batch.metadata, option=_SORTED).decode()},'
            f'"recorded_at":{_json(columns.recorded)},"schema_version":{_GRANTED_SCHEMA:d},'
        )
        self.event_type = f'"type":{_json(_GRANTED_TYPE)},'
        # actor < causationid < correlationid < data < datacontenttype < id < schemaversion
        # < source < specversion < subject < time < type
        self.envelope = (
            f'{{"actor":{_json(columns.batch.actor)},'
            f'"causationid":{_json(columns.batch.causation)},'
            f'"correlationid":{_json(columns.batch.correlation)},'
        )
        outbox = ctx.outbox
        self.source = (
            f'"schemaversion":{_GRANTED_SCHEMA:d},"source":{_json(outbox.source)},'
            '"specversion":"1.0",'
        )
        self.sent = f'"time":{_json(columns.sent)},"type":{_json(_GRANTED_TYPE)}}}'
        self.topic = outbox.topic


_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def new_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, from one read of the system's randomness:
    what ``str(uuid.uuid4())`` gives, without a ``UUID`` object each."""
    raw = os.urandom(16 * n)
    ids = []
    for i in range(0, 16 * n, 16):
        h = f"{int.from_bytes(raw[i : i + 16]) & _CLEAR | _VERSION_4:032x}"
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


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
