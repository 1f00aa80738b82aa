"""The enrolment saga: proposal by the provider, the learner's consent, the ledger's answer,
cancellation, agency review of held enrolments, and expiry of unconfirmed proposals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import domain, store
from services.payments.commands import ConfirmEnrolment, ProposeEnrolment
from services.payments.domain import Canceller, PaymentsError
from services.payments.handlers import Payments
from shared.events.base import Event
from shared.events.ledger import CourseRef
from shared.events.payments import (
    CaptureRequested,
    EnrolmentCancelled,
    EnrolmentRejected,
    EnrolmentRequested,
    ReleaseRequested,
)
from shared.outbox import EventContext

Row = dict[str, Any]


async def load(session: AsyncSession, enrolment_id: uuid.UUID, *, lock: bool = False) -> Row:
    row = await store.get(session, "enrolments", enrolment_id, lock=lock)
    if row is None:
        raise domain.Unknown("enrolment_not_found", f"no enrolment {enrolment_id}")
    return row


async def change(session: AsyncSession, row: Row, **fields: Any) -> Row:
    await store.update(session, "enrolments", row["enrolment_id"], **fields)
    row.update(fields)
    return row


async def propose(
    p: Payments, session: AsyncSession, provider_id: str, cmd: ProposeEnrolment, actor: str
) -> Row:
    """Check the read models and record the proposal; the learner has to confirm it."""
    now = p.clock.now()
    # seats and the hourly allowance are counted under these locks (always in this order)
    await store.lock_key(session, f"payments:session:{cmd.session_id}")
    await store.lock_key(session, f"payments:provider:{provider_id}")
    account = await store.account(session, cmd.account_id)
    course = await store.course(session, cmd.course_id)
    training = await store.training_session(session, cmd.session_id)
    domain.check_proposal(
        provider_id=provider_id,
        provider_status=await store.provider_status(session, provider_id, now.date()),
        account=account,
        course=course,
        session=training,
        seats_taken=await store.seats_taken(session, cmd.session_id),
        today=now.date(),
    )
    assert account is not None and course is not None and training is not None
    fee, exemption = domain.participation_fee(
        p.config, account, course, await store.lots_of(session, account.account_id), now
    )
    requested = domain.credit_request(course.price, fee)
    recent = await store.enrolments_since(session, provider_id, now - timedelta(hours=1))
    held = domain.velocity_exceeded(p.config, recent)
    row: Row = {
        "enrolment_id": uuid.uuid4(),
        "account_id": account.account_id,
        "provider_id": provider_id,
        "course_id": course.course_id,
        "course_version": course.version,
        "session_id": training.session_id,
        "starts_on": training.starts_on,
        "ends_on": training.ends_on,
        "ends_at": training.ends_at,
        "price": course.price,
        "status": "held" if held else "awaiting_learner_confirmation",
        "hold_reason": "velocity" if held else None,
        "participation_fee": fee,
        "fee_exemption": exemption,
        "requested": requested,
        "co_payment": fee,
        "proposed_by": actor,
        "proposed_at": now,
        "expires_at": None if held else now + p.config.confirmation_window,
        "updated_at": now,
    }
    await store.insert(session, "enrolments", row)
    return await load(session, row["enrolment_id"])


def _ref(row: Row) -> dict[str, Any]:
    return {
        "enrolment_id": row["enrolment_id"],
        "account_id": row["account_id"],
        "provider_id": row["provider_id"],
        "course_id": row["course_id"],
        "session_id": row["session_id"],
    }


async def _reject(
    p: Payments, session: AsyncSession, row: Row, status: str, reason: str, ctx: EventContext
) -> Row:
    now = p.clock.now()
    await change(session, row, status=status, reason=reason, decided_at=now, updated_at=now)
    await p.outbox.add(session, [EnrolmentRejected(**_ref(row), status=status, reason=reason)], ctx)
    return row


async def expire_if_due(p: Payments, session: AsyncSession, row: Row, ctx: EventContext) -> bool:
    if row["status"] in domain.AWAITING_LEARNER and row["expires_at"] <= p.clock.now():
        await _reject(p, session, row, "expired", "confirmation_expired", ctx)
        return True
    return False


async def confirm(
    p: Payments, session: AsyncSession, row: Row, cmd: ConfirmEnrolment, ctx: EventContext
) -> Row:
    """The learner consents: re-check, then ask the ledger to reserve (``reserving``)."""
    if row["status"] in ("reserving", "confirmed", "completed"):
        return row  # consent given already: the saga is under way
    if await expire_if_due(p, session, row, ctx):
        return row
    if row["status"] not in domain.AWAITING_LEARNER:
        raise PaymentsError("not_awaiting_confirmation", f"the enrolment is {row['status']}")
    if row["status"] == "awaiting_co_payment" and not cmd.accept_co_payment:
        raise PaymentsError(
            "co_payment_required",
            "the account does not cover the price: confirm with accept_co_payment or refuse",
        )
    now = p.clock.now()
    account = await store.account(session, row["account_id"])
    course = await store.course(session, row["course_id"])
    provider_status = await store.provider_status(session, row["provider_id"], now.date())
    if provider_status not in domain.ELIGIBLE_PROVIDER:
        return await _reject(p, session, row, "rejected", "provider_not_eligible", ctx)
    if course is None or course.status != "approved":
        return await _reject(p, session, row, "rejected", "course_not_approved", ctx)
    if account is None or account.status != "active":
        return await _reject(p, session, row, "rejected", "account_not_active", ctx)
    # the fee follows the learner's situation at consent, not at proposal
    fee, exemption = domain.participation_fee(
        p.config, account, course, await store.lots_of(session, account.account_id), now
    )
    try:
        requested = domain.credit_request(row["price"], fee)
    except PaymentsError as exc:
        return await _reject(p, session, row, "rejected", exc.code, ctx)
    reservation_id = uuid.uuid4()
    await store.insert(
        session,
        "reservations",
        {
            "reservation_id": reservation_id,
            "enrolment_id": row["enrolment_id"],
            "account_id": row["account_id"],
            "requested": requested,
            "up_to": cmd.accept_co_payment,
            "status": "requested",
            "requested_at": now,
            "updated_at": now,
        },
    )
    await change(
        session,
        row,
        status="reserving",
        participation_fee=fee,
        fee_exemption=exemption,
        requested=requested,
        accept_co_payment=cmd.accept_co_payment,
        reservation_id=reservation_id,
        confirmed_at=row["confirmed_at"] or now,
        updated_at=now,
    )
    await p.outbox.add(
        session,
        [
            EnrolmentRequested(
                enrolment_id=row["enrolment_id"],
                account_id=row["account_id"],
                reservation_id=reservation_id,
                provider_id=row["provider_id"],
                course=course_ref(course),
                course_version=row["course_version"],
                amount=requested,
                up_to=cmd.accept_co_payment,
                expires_at=domain.reservation_expiry(p.config, row["ends_on"], now),
            )
        ],
        ctx,
    )
    return row


def course_ref(course: domain.CourseView) -> CourseRef:
    return CourseRef(
        course_id=course.course_id,
        isced_field=course.isced_field,
        eqf_level=course.eqf_level,
        tags=course.tags,
    )


async def refuse(p: Payments, session: AsyncSession, row: Row, ctx: EventContext) -> Row:
    if await expire_if_due(p, session, row, ctx):
        return row
    if row["status"] == "refused":
        return row
    if row["status"] not in domain.AWAITING_LEARNER:
        raise PaymentsError("not_awaiting_confirmation", f"the enrolment is {row['status']}")
    return await _reject(p, session, row, "refused", "learner_refused", ctx)


async def cancel(
    p: Payments, session: AsyncSession, row: Row, by: Canceller, reason: str, ctx: EventContext
) -> Row:
    """Apply the cancellation rules; the ledger releases (and maybe captures a share)."""
    now = p.clock.now()
    if row["status"] == "cancelled":
        return row
    claims = await store.claims_of(session, row["enrolment_id"])
    in_flight = any(c["status"] in ("approved", "held") and c["captured"] == 0 for c in claims)
    decision = domain.decide_cancellation(
        p.config,
        by=by,
        status=row["status"],
        confirmed_at=row["confirmed_at"],
        starts_on=row["starts_on"],
        price=row["price"],
        covered=row["covered"] - row["captured"],
        claim_in_flight=in_flight,
        now=now,
    )
    events: list[Event] = []
    reservation = (
        await store.get(session, "reservations", row["reservation_id"], lock=True)
        if row["reservation_id"]
        else None
    )
    active = reservation is not None and reservation["status"] == "active"
    share = decision.provider_share if active else 0
    if active and share > 0:
        assert reservation is not None
        claim_id = uuid.uuid4()
        await store.insert(
            session,
            "claims",
            {
                "claim_id": claim_id,
                "enrolment_id": row["enrolment_id"],
                "provider_id": row["provider_id"],
                "account_id": row["account_id"],
                "milestone": "cancellation",
                "evidence": {"rule": decision.kind, "reason": reason},
                "status": "approved",
                "amount": share,
                "reservation_id": reservation["reservation_id"],
                "capture_requested": True,
                "claimed_by": f"system:cancellation-by-{by}",
                "claimed_at": now,
                "decided_at": now,
                "updated_at": now,
            },
        )
        events.append(
            CaptureRequested(
                enrolment_id=row["enrolment_id"],
                account_id=row["account_id"],
                reservation_id=reservation["reservation_id"],
                claim_id=claim_id,
                amount=share,
            )
        )
    elif active:
        assert reservation is not None
        events.append(
            ReleaseRequested(
                enrolment_id=row["enrolment_id"],
                account_id=row["account_id"],
                reservation_id=reservation["reservation_id"],
                reason=f"cancelled by {by}: {decision.kind}",
            )
        )
    await change(
        session,
        row,
        status="cancelled",
        reason=reason or None,
        cancelled_by=by,
        cancellation=decision.kind,
        cancelled_at=now,
        updated_at=now,
    )
    events.append(
        EnrolmentCancelled(
            **_ref(row), cancelled_by=by, rule=decision.kind, provider_share=share, reason=reason
        )
    )
    await p.outbox.add(session, events, ctx)
    return row


async def review(
    p: Payments, session: AsyncSession, row: Row, approve: bool, ctx: EventContext
) -> Row:
    """An agency decides on an enrolment the velocity rule held."""
    if row["status"] != "held":
        raise PaymentsError("not_held", f"the enrolment is {row['status']}, not held")
    if not approve:
        return await _reject(p, session, row, "rejected", "rejected_on_review", ctx)
    now = p.clock.now()
    return await change(
        session,
        row,
        status="awaiting_learner_confirmation",
        expires_at=now + p.config.confirmation_window,
        updated_at=now,
    )


async def expire_due(p: Payments, session: AsyncSession, limit: int = 500) -> int:
    """Expire proposals the learner left unconfirmed past their deadline (nothing reserved)."""
    ctx = EventContext.new("system:enrolment-expiry")
    due = await store.due_for_expiry(session, p.clock.now(), limit)
    for enrolment_id in due:
        row = await load(session, enrolment_id)
        await _reject(p, session, row, "expired", "confirmation_expired", ctx)
    return len(due)
