"""The ledger's answers, a fetched batch at a time: the same steps as :mod:`.saga`, with the
round trips of a batch instead of an answer's.

The batch's enrolments are locked first, in key order (the order the HTTP paths lock an
enrolment before its reservation), then its reservations, then the claims it names, in three
statements. Each answer is then decided in memory, in order, by the same domain rules as one
at a time, on the rows as the answers before it left them; what changed is written by one
statement per table and the events staged by one more.

An answer this path does not take is applied by its single handler: a reservation a claim
an operator retried waits on, a capture named by no part id (a request made before parts had
ids), a refused capture. What the batch decided before it is written first, and the batch
goes on after it with rows read again, so the order of the answers and of their events is
the order they came in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import claims as claim_rules
from services.payments.domain import enrolments as rules
from services.payments.domain import reservations
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.reservations import Reservation, ReservationMove
from services.payments.handlers import Payments, saga
from services.payments.store import rows
from shared.events import Envelope
from shared.events.base import Event
from shared.events.ledger import (
    CreditsReserved,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)
from shared.outbox import EventContext

log = logging.getLogger(__name__)

Row = TypeVar("Row", Enrolment, Reservation, Claim)

Answered = CreditsReserved | ReservationRejected | ReservationCaptured | ReservationReleased
"""The answers decided in the batch; the others (a refused capture) go one at a time."""

_MOVES: dict[type[Event], ReservationMove] = {
    CreditsReserved: "reserve",
    ReservationRejected: "refuse",
    ReservationCaptured: "capture",
    ReservationReleased: "release",
}
_CLAIMS = (
    "SELECT * FROM payments.claims WHERE claim_id = ANY(:parts) OR (reservation_id = ANY(:r) "
    "AND status = 'approved' AND NOT capture_requested AND captured = 0) "
    "ORDER BY claim_id FOR UPDATE"
)
_ENROLMENTS = (
    "SELECT * FROM payments.enrolments WHERE enrolment_id IN (SELECT enrolment_id "
    "FROM payments.reservations WHERE reservation_id = ANY(:r)) ORDER BY enrolment_id FOR UPDATE"
)


@dataclass
class _Batch:
    """The rows a stretch of answers reads, as read and as decided so far, and the events
    its answers staged."""

    read: dict[Any, Any] = field(default_factory=dict)
    now: dict[Any, Any] = field(default_factory=dict)
    waiting: set[uuid.UUID | None] = field(
        default_factory=set
    )  # reservations a retried claim awaits
    staged: list[Envelope] = field(default_factory=list)

    def take(self, found: Sequence[Any]) -> None:
        for row in found:
            key = (type(row), getattr(row, rows.TABLES[type(row)][1]))
            self.read[key] = self.now[key] = row

    def get(self, kind: type[Row], key: uuid.UUID | None) -> Row | None:
        row: Row | None = self.now.get((kind, key))
        return row

    def put(self, row: Row) -> None:
        self.now[(type(row), getattr(row, rows.TABLES[type(row)][1]))] = row


async def answer(
    payments: Payments, session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
) -> list[BaseException | None]:
    """Apply the ledger's answers ``items`` (envelope and event, in delivery order)."""
    start = 0
    while start < len(items):
        start = await _stretch(payments, session, items, start)
    return [None] * len(items)


async def _stretch(
    payments: Payments, session: AsyncSession, items: Sequence[tuple[Envelope, Any]], start: int
) -> int:
    """Decide ``items[start:]`` until one must go alone (applied here after the others are
    written); the position to go on from."""
    todo = items[start:]
    batch = await _load(session, [event for _, event in todo])
    now = payments.clock.now()
    for offset, (env, event) in enumerate(todo):
        if not isinstance(event, Answered) or _alone(batch, event):
            await _write(payments, session, batch)
            await saga.ANSWERS[type(event)](
                event, payments.context(session, EventContext.caused_by(env))
            )
            return start + offset + 1
        cause = EventContext.caused_by(env)
        for emitted in _decide(payments, batch, event, now):
            batch.staged.append(payments.outbox.envelope(emitted, cause))
    await _write(payments, session, batch)
    return len(items)


async def _load(session: AsyncSession, events: Sequence[Any]) -> _Batch:
    batch = _Batch()
    ids = sorted({e.reservation_id for e in events if isinstance(e, Answered)})
    if not ids:
        return batch
    batch.take(await rows.many(session, Enrolment, _ENROLMENTS, {"r": ids}))
    batch.take(list((await rows.get_many(session, Reservation, ids, lock=True)).values()))
    parts = sorted(
        {e.capture_id for e in events if isinstance(e, ReservationCaptured) and e.capture_id}
    )
    waits = CreditsReserved | ReservationRejected  # a retried claim may wait on these
    asked = [e.reservation_id for e in events if isinstance(e, waits)]
    if parts or asked:
        claims = await rows.many(session, Claim, _CLAIMS, {"parts": parts, "r": asked})
        batch.take(claims)
        batch.waiting = {
            c.reservation_id
            for c in claims
            if c.status == "approved" and not c.capture_requested and c.captured == 0
        }
    return batch


def _alone(batch: _Batch, event: Answered) -> bool:
    """Whether the answer takes its single handler's path."""
    if isinstance(event, CreditsReserved | ReservationRejected):
        return event.reservation_id in batch.waiting
    if isinstance(event, ReservationCaptured):
        return event.capture_id is None
    return False


def _decide(payments: Payments, batch: _Batch, event: Answered, now: Any) -> list[Event]:
    """One answer, on the batch's rows: :mod:`.saga`'s step for it; the events it emits."""
    res = batch.get(Reservation, event.reservation_id)
    if res is None or not reservations.applies(res, _MOVES[type(event)]):
        return []
    enrolment = batch.get(Enrolment, res.enrolment_id)
    assert enrolment is not None, f"reservation {res.reservation_id} without its enrolment"
    if isinstance(event, CreditsReserved):
        batch.put(reservations.reserved(res, event.amount, now))
        if enrolment.reservation_id != res.reservation_id:
            return []
        after, events = rules.on_reserved(enrolment, event, now)
        batch.put(after)
        return list(events)
    if isinstance(event, ReservationRejected):
        batch.put(reservations.refused(res, event.reason, now))
        if enrolment.reservation_id != res.reservation_id:
            return []
        config = payments.config
        after, events = rules.on_reservation_rejected(config, enrolment, event, res.up_to, now)
        batch.put(after)
        return list(events)
    if isinstance(event, ReservationReleased):
        expired = event.reason == "expired"
        batch.put(reservations.released(res, event.amount, expired, now))
        batch.put(rules.on_released(enrolment, event.amount, expired, now))
        return []
    return _captured(batch, event, res, enrolment, now)


def _captured(
    batch: _Batch, event: ReservationCaptured, res: Reservation, enrolment: Enrolment, now: Any
) -> list[Event]:
    claim = batch.get(Claim, event.capture_id)
    if claim is not None and claim.captured > 0:
        return []  # this part was applied already
    moved = reservations.captured(res, event.amount, event.released, event.final, now)
    batch.put(moved)
    if claim is None:
        log.warning("capture of reservation %s matches no claim", res.reservation_id)
        batch.put(rules.on_captured(enrolment, event.amount, event.released, False, now))
        return []
    batch.put(claim_rules.on_captured(claim, event.amount, now))
    completion = claim.milestone == "completion"
    batch.put(rules.on_captured(enrolment, event.amount, event.released, completion, now))
    return claim_rules.certified(enrolment, claim)


async def _write(payments: Payments, session: AsyncSession, batch: _Batch) -> None:
    """What the batch decided: one statement per table, then its events; the batch then
    holds nothing more to write."""
    for kind in (Reservation, Enrolment, Claim):
        moves = [
            (batch.read[k], row)
            for k, row in batch.now.items()
            if k[0] is kind and row is not batch.read[k]
        ]
        await rows.save_many(session, moves)
    await payments.outbox.add_envelopes(session, batch.staged)
    batch.read.update(batch.now)
    batch.staged = []
