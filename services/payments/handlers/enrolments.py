"""Enrolment use cases: proposal by the provider, the learner's consent or refusal,
cancellation, agency review of held enrolments, and expiry of unconfirmed proposals. Each
loads the enrolment, asks :mod:`services.payments.domain.enrolments` to decide, stores the
new state and stages its events, in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.commands import ConfirmEnrolment, ProposeEnrolment
from services.payments.domain import cancellation, guidance, proposal, reservations, resolution
from services.payments.domain import enrolments as rules
from services.payments.domain.enrolments import Canceller, Enrolment
from services.payments.domain.errors import PaymentsError, Unknown
from services.payments.domain.guidance import GuidancePlan
from services.payments.domain.reservations import Reservation
from services.payments.handlers import Context
from services.payments.store import claims as claim_store
from services.payments.store import enrolments as store
from services.payments.store import read_models, rows
from shared.errors import DomainError, NotFoundError
from shared.events.base import Event
from shared.events.payments import CancellationReason
from shared.outbox import EventContext


async def load(session: AsyncSession, enrolment_id: uuid.UUID, *, lock: bool = False) -> Enrolment:
    enrolment = await rows.get(session, Enrolment, enrolment_id, lock=lock)
    if enrolment is None:
        raise Unknown("enrolment_not_found", f"no enrolment {enrolment_id}")
    return enrolment


async def propose(provider_id: str, cmd: ProposeEnrolment, ctx: Context) -> Enrolment:
    """Check the read models and record ``provider_id``'s proposal (the context's actor
    proposes); the learner has to confirm it."""
    session, now = ctx.session, ctx.now
    # seats and the hourly allowance are counted under these locks (always in this order)
    await rows.lock_key(
        session, f"payments:session:{cmd.session_id}", f"payments:provider:{provider_id}"
    )
    read = await read_models.enrolment_inputs(
        session,
        account_id=cmd.account_id,
        course_id=cmd.course_id,
        provider_id=provider_id,
        today=now.date(),
        session_id=cmd.session_id,
        since=now - timedelta(hours=1),
    )
    account, course, training = read.account, read.course, read.session
    proposal.check_proposal(
        provider_id=provider_id,
        provider_status=read.provider_status,
        account=account,
        course=course,
        session=training,
        seats_taken=read.seats_taken,
        today=now.date(),
    )
    assert account is not None and course is not None and training is not None
    enrolment = proposal.propose(
        ctx.config,
        enrolment_id=uuid.uuid4(),
        provider_id=provider_id,
        account=account,
        course=course,
        session=training,
        lots=read.lots,
        enrolments_last_hour=read.proposed_since,
        actor=ctx.actor,
        now=now,
    )
    followed: list[Event] = []
    if cmd.guidance_plan_id is not None:
        plan = await rows.get(session, GuidancePlan, cmd.guidance_plan_id)
        followed = guidance.follow(plan, cmd.guidance_plan_id, enrolment)
        enrolment = replace(enrolment, guidance_plan_id=cmd.guidance_plan_id)
    await rows.insert(session, enrolment)
    if enrolment.status in rules.AWAITING_LEARNER:
        await ctx.emit(rules.proposed(enrolment))
    await ctx.emit(*followed)
    return enrolment  # inserted with every column: the row is the enrolment as it is here


@dataclass(frozen=True)
class ConfirmOrder:
    """One learner's consent in a batch: the enrolment, the learner's account (a learner
    confirms only their own; another's answers as a missing one) and what caused it."""

    enrolment_id: uuid.UUID
    account_id: uuid.UUID | None
    command: ConfirmEnrolment
    events: EventContext


async def confirm_many(
    orders: Sequence[ConfirmOrder], ctx: Context
) -> list[Enrolment | DomainError]:
    """The learners consent: each enrolment re-checked, then the ledger asked to reserve
    (``reserving``), in the context's transaction, each with its own cause. At most one
    order per enrolment (the caller's to ensure). The enrolments are locked in one
    statement, in key order, and the read models the consents are decided on (accounts,
    courses, providers, lots) read in one more; a refused consent is answered alone with
    its error, and one that comes after the deadline expires the proposal (stored with
    the batch) and is refused; the reservations asked for, the enrolments and the events
    are written in one statement each."""
    session = ctx.session
    found = await rows.get_many(session, Enrolment, {o.enrolment_id for o in orders}, lock=True)
    results: dict[int, Enrolment | DomainError] = {}
    decided: dict[int, tuple[Enrolment, list[Event], Reservation | None, DomainError | None]] = {}
    consenting: list[int] = []  # those decided on their read models, read together below
    for i, order in enumerate(orders):
        before = found.get(order.enrolment_id)
        if before is None or order.account_id is None or before.account_id != order.account_id:
            # another learner's enrolment answers exactly like one that does not exist
            missing = f"no enrolment {order.enrolment_id}"
            results[i] = NotFoundError(missing, code="enrolment_not_found")
            continue
        expired = rules.expire_if_due(before, ctx.now)
        if expired is not None:
            # a consent that comes too late expires the proposal for good, and is refused
            after, events = expired
            late = PaymentsError("confirmation_expired", "the confirmation period is over")
            decided[i] = (after, list(events), None, late)
        elif before.status in rules.CONSENTED:
            decided[i] = (before, [], None, None)  # consent given already: the saga is under way
        else:
            try:
                rules.check_consent(before, order.command.accept_co_payment)
            except DomainError as refused:
                results[i] = refused
                continue
            consenting.append(i)
    reads = await read_models.enrolment_inputs_many(
        session,
        [_asked(found[orders[i].enrolment_id]) for i in consenting],
        ctx.now.date(),
    )
    for i, read in zip(consenting, reads, strict=True):
        order = orders[i]
        try:
            own = replace(ctx, events=order.events)
            decided[i] = (*_consented(found[order.enrolment_id], order.command, read, own), None)
        except DomainError as refused:
            results[i] = refused
    moves: list[tuple[Enrolment, Enrolment]] = []
    asked: list[Reservation] = []
    envelopes = []
    for i, order in enumerate(orders):
        if i not in decided:
            continue
        after, events, reservation, refusal = decided[i]
        moves.append((found[order.enrolment_id], after))
        if reservation is not None:
            asked.append(reservation)
        envelopes += [ctx.outbox.envelope(e, order.events) for e in events]
        results[i] = refusal or after
    await rows.insert_many(session, asked)
    await rows.save_many(session, moves)
    await ctx.outbox.add_envelopes(session, envelopes)
    return [results[i] for i in range(len(orders))]


def _asked(enrolment: Enrolment) -> read_models.InputsAsked:
    """What a learner's consent to ``enrolment`` is decided on."""
    return read_models.InputsAsked(enrolment.account_id, enrolment.course_id, enrolment.provider_id)


def _consented(
    enrolment: Enrolment, cmd: ConfirmEnrolment, read: read_models.EnrolmentInputs, ctx: Context
) -> tuple[Enrolment, list[Event], Reservation | None]:
    """The enrolment after its learner's consent (checked), decided on the read models
    ``read`` for it, its events and the reservation it asks the ledger for; nothing
    written yet."""
    now = ctx.now
    after, events = rules.consent(
        ctx.config,
        enrolment,
        provider_status=read.provider_status,
        account=read.account,
        course=read.course,
        lots=read.lots,
        accept_co_payment=cmd.accept_co_payment,
        reservation_id=uuid.uuid4(),
        now=now,
    )
    if after.status != "reserving":
        return after, list(events), None
    assert after.reservation_id is not None
    reservation = reservations.request(
        reservation_id=after.reservation_id,
        enrolment_id=after.enrolment_id,
        account_id=after.account_id,
        amount=after.requested,
        up_to=after.accept_co_payment,
        now=now,
    )
    return after, list(events), reservation


async def refuse(enrolment: Enrolment, ctx: Context) -> Enrolment:
    """The learner refuses (or the proposal had expired already)."""
    decided = rules.expire_if_due(enrolment, ctx.now) or rules.refuse(enrolment, ctx.now)
    return await ctx.apply(enrolment, decided)


async def cancel(
    enrolment: Enrolment, by: Canceller, reason: CancellationReason, ctx: Context
) -> Enrolment:
    """Apply the cancellation rules; the ledger releases (and maybe captures a share)."""
    if enrolment.status == "cancelled":
        return enrolment
    session = ctx.session
    reservation = (
        await rows.get(session, Reservation, enrolment.reservation_id, lock=True)
        if enrolment.reservation_id
        else None
    )
    cancelled = cancellation.cancel(
        ctx.config,
        enrolment,
        by=by,
        reason=reason,
        claims=await claim_store.claims_of(session, enrolment.enrolment_id),
        reservation=reservation,
        share_claim_id=uuid.uuid4(),
        now=ctx.now,
    )
    if cancelled.share_claim is not None:
        await rows.insert(session, cancelled.share_claim)
    return await ctx.apply(enrolment, (cancelled.enrolment, cancelled.events))


async def review(enrolment: Enrolment, approve: bool, ctx: Context) -> Enrolment:
    """An agency decides on an enrolment the velocity rule held."""
    return await ctx.apply(enrolment, rules.review(ctx.config, enrolment, approve, ctx.now))


async def time_out_due(ctx: Context, limit: int = 500) -> int:
    """Expire enrolments the ledger left unanswered past the timeout (their seat is freed;
    credit reserved late is given back when the answer comes)."""
    before = ctx.now - timedelta(minutes=ctx.config.reserving_timeout_minutes)
    due = await store.due_for_time_out(ctx.session, before, limit)
    for enrolment_id in due:
        enrolment = await load(ctx.session, enrolment_id)
        await ctx.apply(enrolment, resolution.time_out(enrolment, ctx.now))
    return len(due)


async def retry_reservation(enrolment_id: uuid.UUID, ctx: Context) -> Enrolment:
    """An operator asks the ledger again for an enrolment whose request it refused."""
    enrolment = await load(ctx.session, enrolment_id, lock=True)
    course = await read_models.course(ctx.session, enrolment.course_id)
    if course is None:
        raise Unknown("course_not_found", f"no course {enrolment.course_id}")
    after, reservation, request = resolution.retry_reservation(
        ctx.config, enrolment, course, uuid.uuid4(), ctx.now
    )
    await rows.insert(ctx.session, reservation)
    return await ctx.apply(enrolment, (after, [request]))


async def abandon(enrolment_id: uuid.UUID, ctx: Context) -> Enrolment:
    """An operator gives up on an enrolment the ledger refused: it ends, the seat is free."""
    enrolment = await load(ctx.session, enrolment_id, lock=True)
    return await ctx.apply(enrolment, resolution.abandon(enrolment, ctx.now))


async def expire_due(ctx: Context, limit: int = 500) -> int:
    """Expire proposals the learner left unconfirmed past their deadline (nothing reserved)."""
    due = await store.due_for_expiry(ctx.session, ctx.now, limit)
    for enrolment_id in due:
        enrolment = await load(ctx.session, enrolment_id)
        decided = rules.rejected(enrolment, "expire", "confirmation_expired", ctx.now)
        await ctx.apply(enrolment, decided)
    return len(due)
