"""The ledger's answers to payments' requests: reserved or rejected, captured, released.

Each handler finds its reservation by the id payments chose and does nothing when the
reservation is not one of ours or the answer was already applied
(:func:`services.payments.domain.reservations.applies`), so an answer delivered twice (even
under a new event id) changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

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


async def _advance(
    ctx: Context,
    reservation_id: uuid.UUID,
    move: ReservationMove,
    change: Callable[[Reservation], Reservation],
) -> tuple[Reservation, Enrolment] | None:
    """Store what the answer ``move`` changes in the reservation, when it is news; the
    reservation as it was and its enrolment (locked)."""
    res = await _answered(ctx.session, reservation_id, move)
    if res is None:
        return None
    await rows.save(ctx.session, res, change(res))
    enrolment = await rows.get(ctx.session, Enrolment, res.enrolment_id, lock=True)
    assert enrolment is not None
    return res, enrolment


async def on_reserved(event: CreditsReserved, ctx: Context) -> None:
    now = ctx.now
    answered = await _advance(
        ctx, event.reservation_id, "reserve", lambda r: reservations.reserved(r, event.amount, now)
    )
    if answered is None or answered[1].reservation_id != answered[0].reservation_id:
        return
    enrolment = answered[1]
    await ctx.apply(enrolment, rules.on_reserved(enrolment, event, now))


async def on_rejected(event: ReservationRejected, ctx: Context) -> None:
    now = ctx.now
    answered = await _advance(
        ctx, event.reservation_id, "refuse", lambda r: reservations.refused(r, event.reason, now)
    )
    if answered is None or answered[1].reservation_id != answered[0].reservation_id:
        return
    res, enrolment = answered
    decided = rules.on_reservation_rejected(ctx.config, enrolment, event, res.up_to, now)
    await ctx.apply(enrolment, decided)


async def on_captured(event: ReservationCaptured, ctx: Context) -> None:
    session, now = ctx.session, ctx.now
    answered = await _advance(
        ctx,
        event.reservation_id,
        "capture",
        lambda r: reservations.captured(r, event.amount, event.released, now),
    )
    if answered is None:
        return
    res, enrolment = answered
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
    now = ctx.now
    expired = event.reason == "expired"
    answered = await _advance(
        ctx,
        event.reservation_id,
        "release",
        lambda r: reservations.released(r, event.amount, expired, now),
    )
    if answered is None:
        return
    _, enrolment = answered
    after = rules.on_released(enrolment, event.amount, expired, now)
    await rows.save(ctx.session, enrolment, after)
