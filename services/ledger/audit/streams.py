"""Checking whole streams, as verify reads them: each event's hash recomputed over its
canonical bytes, the chain linked from the genesis, the versions in order, the stream
folded, and what the fold gives compared with the stream's projection rows.

Pure, over plain values (the rows as the store reads them, the JSON columns as text), so
that a batch of streams can be checked in another process (:mod:`.verify` spreads the
batches over processes); a stream is always checked whole, by one call.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ledger.audit.budgets import FunderBooks, budget_mismatches
from services.ledger.domain import WalletState, evolve
from services.ledger.domain.budgets import BudgetState, evolve_budget
from services.ledger.store.audit import (
    BUDGET_VERIFY,
    LOT_VERIFY,
    RESERVATION_VERIFY,
    WALLET_VERIFY,
    Projection,
)
from services.ledger.store.chain import GENESIS, canonical_json, read_plain, rfc3339
from services.ledger.store.projections import LOT_CHANGES, RESERVATION_CHANGES, WALLET_FIGURES
from shared.events import Event
from shared.events.base import UnknownEventType, typed_payload
from shared.events.budgets import BudgetDrawn, BudgetEvent
from shared.events.ledger import LedgerEvent

Row = tuple[int, str, str, int, str, int, str, str, datetime, str, str]
"""An event as :func:`services.ledger.store.audit.verify_events` reads it: position,
event_id, stream_id, version, type, schema_version, data and metadata (JSON text),
recorded_at, prev_hash, hash."""

Rows = dict[uuid.UUID, dict[str, Any]]


Stream = tuple[
    str, list[Row], Projection | None, list[Projection], list[Projection], Projection | None
]
"""One stream: its id, its events in version order, and its projection rows (the columns
``store.audit`` names ``WALLET_VERIFY``, ``LOT_VERIFY``, ...): the wallet, the lots, the
reservations, the budget (a plain tuple: it pickles without any Python code)."""


@dataclass
class Checked:
    """What a batch of streams gave: counts, mismatches in stream order, every event's
    position, the hashes at the checkpoints' head positions, and the funders' books."""

    streams: int = 0
    events: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    head_hashes: dict[int, str] = field(default_factory=dict)
    books: FunderBooks = field(default_factory=FunderBooks)


def wallet_view(state: WalletState) -> dict[str, Any]:
    return {f: getattr(state, f) for f in WALLET_FIGURES}


class StreamChecker:
    """Folds one stream's rows, checking the chain as it goes."""

    def __init__(self, checked: Checked, stream_id: str) -> None:
        self.checked = checked
        self.stream_id = stream_id
        self.state = WalletState()
        self.budget: BudgetState | None = None  # a funder's budget stream
        self.draws: list[BudgetDrawn] = []
        self.prev = GENESIS
        self.version = 0
        self.last_position = 0
        self.broken = False

    def mismatch(self, position: int | None, problem: str, **extra: Any) -> None:
        self.checked.mismatches.append(
            {"stream": self.stream_id, "position": position, "problem": problem, **extra}
        )

    def feed(self, row: Row) -> None:
        position, event_id, stream, version, type_, schema, data_text, meta_text = row[:8]
        recorded_at, prev_hash, recorded_hash = row[8:]
        self.last_position = position
        self.version += 1
        if version != self.version:
            self.mismatch(position, f"version {version} where {self.version} expected")
            self.version = version
        if prev_hash != self.prev:
            self.mismatch(
                position, "prev_hash does not name the previous event's hash", version=version
            )
        data, plain_data = read_plain(data_text)
        metadata, plain_metadata = read_plain(meta_text)
        canonical = canonical_json(
            {
                "data": data,
                "event_id": event_id,
                "metadata": metadata,
                "recorded_at": rfc3339(recorded_at),
                "schema_version": schema,
                "stream_id": stream,
                "type": type_,
                "version": version,
            },
            plain=plain_data and plain_metadata,  # the rest: strings and int4 columns
        )
        expected = hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()
        if expected != recorded_hash:
            self.mismatch(
                position,
                "hash does not match the event's canonical bytes",
                version=version,
                recorded=recorded_hash,
                recomputed=expected,
            )
        self.prev = recorded_hash
        if self.broken:
            return
        try:
            event = _fact(type_, data, position)
            if isinstance(event, BudgetEvent) and not self.state.version:
                self.budget = evolve_budget(self.budget or BudgetState(), event)
                if isinstance(event, BudgetDrawn):
                    self.draws.append(event)
            elif isinstance(event, LedgerEvent) and self.budget is None:
                self.state = evolve(self.state, event)
            else:
                raise ValueError(f"{type_} does not belong in this stream")
        except Exception as exc:
            self.broken = True
            self.mismatch(position, f"event cannot be applied: {exc}", version=version)


def _fact(type_: str, data: dict[str, Any], position: int) -> Event:
    """The event of any stream, upcast (as ``EventRow.fact``)."""
    try:
        return typed_payload(type_, data)
    except UnknownEventType:
        raise ValueError(f"unknown event type {type_} at position {position}") from None


def check_streams(streams: list[Stream], heads: frozenset[int]) -> Checked:
    """Check each of ``streams`` whole; ``heads`` are the checkpoints' head positions."""
    checked = Checked()
    positions, head_hashes = checked.positions, checked.head_hashes
    for stream in streams:
        checker = StreamChecker(checked, stream[0])
        checked.streams += 1
        for row in stream[1]:
            checker.feed(row)
            positions.append(row[0])
            if row[0] in heads:
                head_hashes[row[0]] = row[10]
        checked.events += len(stream[1])
        _finish(checker, stream, checked.books)
    return checked


def _finish(c: StreamChecker, stream: Stream, books: FunderBooks) -> None:
    stream_id, _, wallet, lots, reservations, budget_row = stream
    stream_uuid = uuid.UUID(stream_id)
    if c.budget is not None:
        budget = dict(zip(BUDGET_VERIFY, budget_row, strict=True)) if budget_row else None
        c.checked.mismatches += budget_mismatches(
            stream_uuid, c.last_position, c.budget, c.prev, budget
        )
        books.note_budget(c.budget)
        for draw in c.draws:
            books.note_draw(draw)
        return
    books.note_wallet(stream_uuid, c.state)
    compare(
        c,
        dict(zip(WALLET_VERIFY, wallet, strict=True)) if wallet else None,
        _by_id(LOT_VERIFY, lots),
        _by_id(RESERVATION_VERIFY, reservations),
    )


def _by_id(columns: tuple[str, ...], rows: list[Projection]) -> Rows:
    return {uuid.UUID(r[0]): dict(zip(columns, r, strict=True)) for r in rows}


def compare(
    checker: StreamChecker,
    wallet: Mapping[str, Any] | None,
    lots: Rows,
    reservations: Rows,
) -> None:
    state = checker.state
    pos = checker.last_position
    if wallet is None:
        checker.mismatch(pos, "no wallet projection for this stream")
        return
    rebuilt = wallet_view(state)
    for name in WALLET_FIGURES:
        if wallet[name] != rebuilt[name]:
            checker.mismatch(pos, f"wallet.{name} is {wallet[name]}, events give {rebuilt[name]}")
    if wallet["head_hash"] != checker.prev:
        checker.mismatch(pos, "wallet.head_hash is not the stream's last hash")
    _compare_rows(checker, "lot", state.lots, lots, LOT_CHANGES)
    _compare_rows(checker, "reservation", state.reservations, reservations, RESERVATION_CHANGES)


def _compare_rows(
    checker: StreamChecker,
    what: str,
    rebuilt: Mapping[uuid.UUID, object],
    rows: Rows,
    fields: tuple[str, ...],
) -> None:
    """Each lot (or reservation) the events give against its projection row."""
    pos = checker.last_position
    for key, item in rebuilt.items():
        row = rows.get(key)
        if row is None:
            checker.mismatch(pos, f"{what} {key} missing from the projection")
            continue
        for name in fields:
            if row[name] != getattr(item, name):
                checker.mismatch(
                    pos, f"{what} {key}.{name} is {row[name]}, events give {getattr(item, name)}"
                )
