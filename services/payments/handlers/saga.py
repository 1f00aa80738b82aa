"""The ledger's answers to payments' requests: reserved or rejected, captured, released.

Each handler finds its reservation by the id payments chose and does nothing when the
reservation is not one of ours or the answer was already applied
(:func:`services.payments.domain.reservations.applies`), so an answer delivered twice (even
under a new event id) changes nothing.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import claims as claim_rules
from services.payments.domain import enrolments as rules
from services.payments.domain import reservations
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.reservations import Reservation, ReservationMove
from services.payments.handlers import Context
from services.payments.store import claims as claim_store
from services.payments.store import rows
from shared.events.ledger import (
    CreditsReserved,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)

log = logging.getLogger(__name__)


async def _answered(
    session: AsyncSession, reservation_id: uuid.UUID, move: ReservationMove
) -> Reservation | None:
    """The reservation the answer ``move`` is news for (``None``: nothing to do)."""
    reservation = await rows.get(session, Reservation, reservation_id, lock=True)
    return reservation if reservations.applies(reservation, move) else None


async def _enrolment_of(session: AsyncSession, reservation: Reservation) -> Enrolment:
    enrolment = await rows.get(session, Enrolment, reservation.enrolment_id, lock=True)
    assert enrolment is not None
    return enrolment


async def on_reserved(event: CreditsReserved, ctx: Context) -> None:
    session = ctx.session
    res = await _answered(session, event.reservation_id, "reserve")
    if res is None:
        return
    now = ctx.now
    await rows.save(session, res, reservations.reserved(res, event.amount, now))
    enrolment = await _enrolment_of(session, res)
    if enrolment.reservation_id != res.reservation_id:
        return
    await ctx.apply(enrolment, rules.on_reserved(enrolment, event, now))


async def on_rejected(event: ReservationRejected, ctx: Context) -> None:
    session = ctx.session
    res = await _answered(session, event.reservation_id, "refuse")
    if res is None:
        return
    now = ctx.now
    await rows.save(session, res, reservations.refused(res, event.reason, now))
    enrolment = await _enrolment_of(session, res)
    if enrolment.reservation_id != res.reservation_id:
        return
    decided = rules.on_reservation_rejected(ctx.config, enrolment, event, res.up_to, now)
    await ctx.apply(enrolment, decided)


async def on_captured(event: ReservationCaptured, ctx: Context) -> None:
    session = ctx.session
    res = await _answered(session, event.reservation_id, "capture")
    if res is None:
        return
    now = ctx.now
    await rows.save(session, res, reservations.captured(res, event.amount, event.released, now))
    enrolment = await _enrolment_of(session, res)
    claim = await claim_store.claim_awaiting_capture(session, res.reservation_id)
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


async def on_released(event: ReservationReleased, ctx: Context) -> None:
    session = ctx.session
    res = await _answered(session, event.reservation_id, "release")
    if res is None:
        return
    now = ctx.now
    expired = event.reason == "expired"
    await rows.save(session, res, reservations.released(res, event.amount, expired, now))
    enrolment = await _enrolment_of(session, res)
    await rows.save(session, enrolment, rules.on_released(enrolment, event.amount, expired, now))
