"""Enrolment use cases: proposal by the provider, the learner's consent or refusal,
cancellation, agency review of held enrolments, and expiry of unconfirmed proposals. Each
loads the enrolment, asks :mod:`services.payments.domain.enrolments` to decide, stores the
new state and stages its events, in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.commands import ConfirmEnrolment, ProposeEnrolment
from services.payments.domain import cancellation, proposal, reservations
from services.payments.domain import enrolments as rules
from services.payments.domain.enrolments import Canceller, Enrolment
from services.payments.domain.errors import Unknown
from services.payments.domain.reservations import Reservation
from services.payments.handlers import Payments
from services.payments.store import claims as claim_store
from services.payments.store import enrolments as store
from services.payments.store import read_models, rows
from shared.outbox import EventContext


async def load(session: AsyncSession, enrolment_id: uuid.UUID, *, lock: bool = False) -> Enrolment:
    enrolment = await rows.get(session, Enrolment, enrolment_id, lock=lock)
    if enrolment is None:
        raise Unknown("enrolment_not_found", f"no enrolment {enrolment_id}")
    return enrolment


async def propose(
    p: Payments, session: AsyncSession, provider_id: str, cmd: ProposeEnrolment, actor: str
) -> Enrolment:
    """Check the read models and record the proposal; the learner has to confirm it."""
    now = p.clock.now()
    # seats and the hourly allowance are counted under these locks (always in this order)
    await rows.lock_key(session, f"payments:session:{cmd.session_id}")
    await rows.lock_key(session, f"payments:provider:{provider_id}")
    account = await read_models.account(session, cmd.account_id)
    course = await read_models.course(session, cmd.course_id)
    training = await read_models.training_session(session, cmd.session_id)
    proposal.check_proposal(
        provider_id=provider_id,
        provider_status=await read_models.provider_status(session, provider_id, now.date()),
        account=account,
        course=course,
        session=training,
        seats_taken=await read_models.seats_taken(session, cmd.session_id),
        today=now.date(),
    )
    assert account is not None and course is not None and training is not None
    enrolment = proposal.propose(
        p.config,
        enrolment_id=uuid.uuid4(),
        provider_id=provider_id,
        account=account,
        course=course,
        session=training,
        lots=await read_models.lots_of(session, account.account_id),
        enrolments_last_hour=await store.enrolments_since(
            session, provider_id, now - timedelta(hours=1)
        ),
        actor=actor,
        now=now,
    )
    await rows.insert(session, enrolment)
    return await load(session, enrolment.enrolment_id)


async def expire_if_due(
    p: Payments, session: AsyncSession, enrolment: Enrolment, ctx: EventContext
) -> Enrolment:
    """The enrolment, expired when its confirmation deadline passed."""
    expired = rules.expire_if_due(enrolment, p.clock.now())
    if expired is None:
        return enrolment
    return await p.apply(session, enrolment, expired, ctx)


async def confirm(
    p: Payments,
    session: AsyncSession,
    enrolment: Enrolment,
    cmd: ConfirmEnrolment,
    ctx: EventContext,
) -> Enrolment:
    """The learner consents: re-check, then ask the ledger to reserve (``reserving``)."""
    if enrolment.status in rules.CONSENTED:
        return enrolment  # consent given already: the saga is under way
    now = p.clock.now()
    expired = rules.expire_if_due(enrolment, now)
    if expired is not None:
        return await p.apply(session, enrolment, expired, ctx)
    rules.check_consent(enrolment, cmd.accept_co_payment)
    account = await read_models.account(session, enrolment.account_id)
    course = await read_models.course(session, enrolment.course_id)
    decided = rules.consent(
        p.config,
        enrolment,
        provider_status=await read_models.provider_status(
            session, enrolment.provider_id, now.date()
        ),
        account=account,
        course=course,
        lots=await read_models.lots_of(session, account.account_id) if account else [],
        accept_co_payment=cmd.accept_co_payment,
        reservation_id=uuid.uuid4(),
        now=now,
    )
    after, _ = decided
    if after.status == "reserving":
        assert after.reservation_id is not None
        await rows.insert(
            session,
            reservations.request(
                reservation_id=after.reservation_id,
                enrolment_id=after.enrolment_id,
                account_id=after.account_id,
                amount=after.requested,
                up_to=after.accept_co_payment,
                now=now,
            ),
        )
    return await p.apply(session, enrolment, decided, ctx)


async def refuse(
    p: Payments, session: AsyncSession, enrolment: Enrolment, ctx: EventContext
) -> Enrolment:
    now = p.clock.now()
    decided = rules.expire_if_due(enrolment, now) or rules.refuse(enrolment, now)
    return await p.apply(session, enrolment, decided, ctx)


async def cancel(
    p: Payments,
    session: AsyncSession,
    enrolment: Enrolment,
    by: Canceller,
    reason: str,
    ctx: EventContext,
) -> Enrolment:
    """Apply the cancellation rules; the ledger releases (and maybe captures a share)."""
    if enrolment.status == "cancelled":
        return enrolment
    reservation = (
        await rows.get(session, Reservation, enrolment.reservation_id, lock=True)
        if enrolment.reservation_id
        else None
    )
    cancelled = cancellation.cancel(
        p.config,
        enrolment,
        by=by,
        reason=reason,
        claims=await claim_store.claims_of(session, enrolment.enrolment_id),
        reservation=reservation,
        share_claim_id=uuid.uuid4(),
        now=p.clock.now(),
    )
    if cancelled.share_claim is not None:
        await rows.insert(session, cancelled.share_claim)
    return await p.apply(session, enrolment, (cancelled.enrolment, cancelled.events), ctx)


async def review(
    p: Payments, session: AsyncSession, enrolment: Enrolment, approve: bool, ctx: EventContext
) -> Enrolment:
    """An agency decides on an enrolment the velocity rule held."""
    decided = rules.review(p.config, enrolment, approve, p.clock.now())
    return await p.apply(session, enrolment, decided, ctx)


async def expire_due(p: Payments, session: AsyncSession, limit: int = 500) -> int:
    """Expire proposals the learner left unconfirmed past their deadline (nothing reserved)."""
    ctx = EventContext.new("system:enrolment-expiry")
    now = p.clock.now()
    due = await store.due_for_expiry(session, now, limit)
    for enrolment_id in due:
        enrolment = await load(session, enrolment_id)
        decided = rules.rejected(enrolment, "expire", "confirmation_expired", now)
        await p.apply(session, enrolment, decided, ctx)
    return len(due)
