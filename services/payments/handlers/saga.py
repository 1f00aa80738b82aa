"""The ledger's answers to payments' requests: reserved or rejected, captured, released.

Each handler finds its reservation by the id payments chose and does nothing when the
reservation is not one of ours or the answer was already applied
(:func:`services.payments.domain.reservations.applies`), so an answer delivered twice (even
under a new event id) changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import claims as claim_rules
from services.payments.domain import enrolments as rules
from services.payments.domain import reservations
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.reservations import Reservation, ReservationMove
from services.payments.handlers import Context, claims
from services.payments.store import claims as claim_store
from services.payments.store import rows
from shared.events.base import Event
from shared.events.ledger import (
    CaptureRejected,
    CreditsReserved,
    EntryReversed,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)

log = logging.getLogger(__name__)


async def _answered(
    ctx: Context, reservation_id: uuid.UUID, move: ReservationMove
) -> Reservation | None:
    """The reservation the answer ``move`` is news for (``None``: nothing to do)."""
    reservation = await rows.get(ctx.session, Reservation, reservation_id, lock=True)
    return reservation if reservations.applies(reservation, move) else None


async def _enrolment_of(session: AsyncSession, reservation: Reservation) -> Enrolment:
    enrolment = await rows.get(session, Enrolment, reservation.enrolment_id, lock=True)
    assert enrolment is not None
    return enrolment


async def on_reserved(event: CreditsReserved, ctx: Context) -> None:
    res = await _answered(ctx, event.reservation_id, "reserve")
    if res is None:
        return
    session, now = ctx.session, ctx.now
    reserved = reservations.reserved(res, event.amount, now)
    await rows.save(session, res, reserved)
    enrolment = await _enrolment_of(session, res)
    waiting = await claim_store.claim_awaiting_reservation(session, res.reservation_id)
    if waiting is not None:
        # reserved again for a claim an operator retried: its capture follows
        await claims.request_capture(waiting, enrolment, reserved, ctx)
        return
    if enrolment.reservation_id != res.reservation_id:
        return
    await ctx.apply(enrolment, rules.on_reserved(enrolment, event, now))


async def on_rejected(event: ReservationRejected, ctx: Context) -> None:
    res = await _answered(ctx, event.reservation_id, "refuse")
    if res is None:
        return
    session, now = ctx.session, ctx.now
    await rows.save(session, res, reservations.refused(res, event.reason, now))
    waiting = await claim_store.claim_awaiting_reservation(session, res.reservation_id)
    if waiting is not None:
        # the credit for a claim an operator retried is not there: back to the operator
        await rows.save(session, waiting, claim_rules.capture_refused(waiting, event.reason, now))
        return
    enrolment = await _enrolment_of(session, res)
    if enrolment.reservation_id != res.reservation_id:
        return
    decided = rules.on_reservation_rejected(ctx.config, enrolment, event, res.up_to, now)
    await ctx.apply(enrolment, decided)


async def _claim_of(
    session: AsyncSession, reservation_id: uuid.UUID, capture_id: uuid.UUID | None
) -> Claim | None:
    """The claim a capture (or its refusal) answers: named by the part's id, or (an answer
    to a request made before parts had ids) the one waiting on the reservation."""
    if capture_id is not None:
        return await rows.get(session, Claim, capture_id, lock=True)
    return await claim_store.claim_awaiting_capture(session, reservation_id)


async def on_captured(event: ReservationCaptured, ctx: Context) -> None:
    res = await _answered(ctx, event.reservation_id, "capture")
    if res is None:
        return
    session = ctx.session
    claim = await _claim_of(session, res.reservation_id, event.capture_id)
    if claim is not None and claim.captured > 0:
        return  # this part was applied already
    now = ctx.now
    moved = reservations.captured(res, event.amount, event.released, event.final, now)
    await rows.save(session, res, moved)
    enrolment = await _enrolment_of(session, res)
    if claim is None:
        log.warning("capture of reservation %s matches no claim", res.reservation_id)
        after = rules.on_captured(enrolment, event.amount, event.released, False, now)
        await rows.save(session, enrolment, after)
        return
    await rows.save(session, claim, claim_rules.on_captured(claim, event.amount, now))
    completion = claim.milestone == "completion"
    after = rules.on_captured(enrolment, event.amount, event.released, completion, now)
    await rows.save(session, enrolment, after)
    await ctx.emit(*claim_rules.certified(enrolment, claim))


async def on_capture_rejected(event: CaptureRejected, ctx: Context) -> None:
    """The ledger refused a capture: the claim stops (``capture_rejected``) until an
    operator retries or abandons it; nothing of it is paid."""
    claim = await _claim_of(ctx.session, event.reservation_id, event.capture_id)
    if claim is None or claim.captured > 0 or not claim.capture_requested:
        return  # not ours, or answered already
    await rows.save(ctx.session, claim, claim_rules.capture_refused(claim, event.reason, ctx.now))


async def on_released(event: ReservationReleased, ctx: Context) -> None:
    res = await _answered(ctx, event.reservation_id, "release")
    if res is None:
        return
    session, now = ctx.session, ctx.now
    expired = event.reason == "expired"
    await rows.save(session, res, reservations.released(res, event.amount, expired, now))
    enrolment = await _enrolment_of(session, res)
    await rows.save(session, enrolment, rules.on_released(enrolment, event.amount, expired, now))


async def on_capture_reversed(event: EntryReversed, ctx: Context) -> None:
    """An admin reversed a capture in the ledger: the claims it paid are stopped (unpaid) or
    owed back by the provider (paid: a recovery netted from its next payouts)."""
    if event.target_event != "ledger.ReservationCaptured" or event.reservation_id is None:
        return
    session = ctx.session
    for claim in await claim_store.claims_captured_from(session, event.reservation_id):
        after, recovery, events = claim_rules.capture_reversed(claim, ctx.now)
        if recovery is not None:
            if await claim_store.recovery_of(session, claim.claim_id) is not None:
                continue  # owed already
            await rows.insert(session, recovery)
        await ctx.apply(claim, (after, events))


Answer = Callable[[Any, Context], Awaitable[None]]

# the ledger's answers and the step each one takes (a reversed capture also feeds a read
# model, so its consumer calls :func:`on_capture_reversed` itself)
ANSWERS: dict[type[Event], Answer] = {
    CreditsReserved: on_reserved,
    ReservationRejected: on_rejected,
    ReservationCaptured: on_captured,
    CaptureRejected: on_capture_rejected,
    ReservationReleased: on_released,
}
