"""Claims: a provider claims payment for a milestone with evidence; the rules approve, hold or
reject it; an approved claim asks the ledger to capture; a hold is released under four eyes
(:mod:`services.payments.handlers.holds`); the learner attests or contests
(:mod:`services.payments.handlers.attestation`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import domain, store
from services.payments.commands import SubmitClaim
from services.payments.domain import PaymentsError
from services.payments.handlers import Payments
from services.payments.handlers.enrolments import course_ref
from shared.events.base import Event
from shared.events.payments import (
    CaptureRequested,
    ClaimApproved,
    ClaimHeld,
    ClaimRejected,
    EnrolmentRequested,
)
from shared.outbox import EventContext

Row = dict[str, Any]

BALANCE = uuid.UUID("8f6b2b8e-51b6-4a57-9d0e-3c1a6f0b2d11")


def balance_reference(enrolment_id: uuid.UUID) -> uuid.UUID:
    """The enrolment reference under which the balance after a start advance is reserved.

    The ledger captures a reservation once and keeps one live reservation per enrolment
    reference; the balance is therefore reserved under a reference derived from the
    enrolment, which payments maps back through the reservation id.
    """
    return uuid.uuid5(BALANCE, str(enrolment_id))


async def change(session: AsyncSession, claim: Row, **fields: Any) -> Row:
    await store.update(session, "claims", claim["claim_id"], **fields)
    claim.update(fields)
    return claim


async def submit(
    p: Payments,
    session: AsyncSession,
    provider_id: str,
    cmd: SubmitClaim,
    actor: str,
    ctx: EventContext,
) -> Row:
    """Record the claim with the rules' decision (``approved``, ``held`` or ``rejected``)."""
    now = p.clock.now()
    enrolment = await store.get(session, "enrolments", cmd.enrolment_id, lock=True)
    if enrolment is None or enrolment["provider_id"] != provider_id:
        # another provider's enrolment answers exactly like one that does not exist
        raise domain.Unknown("enrolment_not_found", f"no enrolment {cmd.enrolment_id}")
    domain.check_claim_evidence(
        milestone=cmd.milestone,
        started_on=cmd.evidence.started_on,
        completed_on=cmd.evidence.completed_on,
        attendance_hours=cmd.evidence.attendance_hours,
        starts_on=enrolment["starts_on"],
        ends_on=enrolment["ends_on"],
        ends_at=enrolment["ends_at"],
        now=now,
    )
    subject: domain.ClaimSubject | None = None
    reservation: Row | None = None
    earlier: list[tuple[str, str]] = []
    if enrolment is not None:
        if enrolment["reservation_id"] is not None:
            reservation = await store.get(
                session, "reservations", enrolment["reservation_id"], lock=True
            )
        subject = domain.ClaimSubject(
            provider_id=enrolment["provider_id"],
            status=enrolment["status"],
            price=enrolment["price"],
            covered=enrolment["covered"],
            captured=enrolment["captured"],
            starts_on=enrolment["starts_on"],
            ends_on=enrolment["ends_on"],
            reservation_status=reservation["status"] if reservation else None,
            reserved_now=reservation["amount"] if reservation else 0,
        )
        if enrolment["provider_id"] == provider_id:
            earlier = [
                (c["milestone"], c["status"])
                for c in await store.claims_of(session, cmd.enrolment_id)
            ]
    decision = domain.decide_claim(
        p.config,
        claimant=provider_id,
        subject=subject,
        milestone=cmd.milestone,
        completion_rate=cmd.evidence.completion_rate,
        earlier_claims=earlier,
        provider_status=await store.provider_status(session, provider_id, now.date()),
        today=now.date(),
    )
    own = enrolment is not None and enrolment["provider_id"] == provider_id
    claim: Row = {
        "claim_id": uuid.uuid4(),
        "enrolment_id": cmd.enrolment_id,
        "provider_id": provider_id,
        "account_id": enrolment["account_id"] if own and enrolment else None,
        "milestone": cmd.milestone,
        "completion_rate": cmd.evidence.completion_rate,
        "evidence": cmd.evidence.model_dump(mode="json"),
        "status": decision.status,
        "reason": decision.reason if decision.status == "rejected" else None,
        "hold_reason": decision.reason if decision.status == "held" else None,
        "held_from": "approved" if decision.status == "held" else None,
        "amount": decision.amount,
        "reservation_id": reservation["reservation_id"] if own and reservation else None,
        "claimed_by": actor,
        "claimed_at": now,
        "decided_at": now,
        "updated_at": now,
        # the learner attests or contests within the window; a rejected claim asks nothing
        "attestation": "not_required" if decision.status == "rejected" else "pending",
        "attest_until": None
        if decision.status == "rejected"
        else now + p.config.attestation_window,
    }
    await store.insert(session, "claims", claim)
    ref = {
        "claim_id": claim["claim_id"],
        "enrolment_id": cmd.enrolment_id,
        "provider_id": provider_id,
        "milestone": cmd.milestone,
    }
    if decision.status == "rejected":
        await p.outbox.add(session, [ClaimRejected(**ref, reason=decision.reason or "")], ctx)
    elif decision.status == "held":
        await p.outbox.add(session, [ClaimHeld(**ref, reason=decision.reason or "")], ctx)
    else:
        assert enrolment is not None and reservation is not None
        await request_capture(p, session, claim, enrolment, reservation, ctx)
    stored = await store.get(session, "claims", claim["claim_id"])
    assert stored is not None
    return stored


async def request_capture(
    p: Payments,
    session: AsyncSession,
    claim: Row,
    enrolment: Row,
    reservation: Row,
    ctx: EventContext,
) -> None:
    """Ask the ledger to capture the claim's amount (it releases the rest of the reservation).

    A start advance leaves the balance of the course to be paid at completion: it is
    reserved again in the same transaction, so that the ledger (which reads one account's
    requests in order) sees the capture and the new reservation back to back.
    """
    now = p.clock.now()
    await change(
        session,
        claim,
        status="approved",
        capture_requested=True,
        held_from=None,
        hold_reason=None,
        updated_at=now,
    )
    events: list[Event] = [
        ClaimApproved(
            claim_id=claim["claim_id"],
            enrolment_id=claim["enrolment_id"],
            provider_id=claim["provider_id"],
            milestone=claim["milestone"],
            amount=claim["amount"],
        ),
        CaptureRequested(
            enrolment_id=enrolment["enrolment_id"],
            account_id=enrolment["account_id"],
            reservation_id=reservation["reservation_id"],
            claim_id=claim["claim_id"],
            amount=claim["amount"],
        ),
    ]
    balance = reservation["amount"] - claim["amount"]
    if claim["milestone"] == "start" and balance > 0:
        course = await store.course(session, enrolment["course_id"])
        if course is None:
            raise PaymentsError("course_not_found", "the course left the read model")
        balance_id = uuid.uuid4()
        await store.insert(
            session,
            "reservations",
            {
                "reservation_id": balance_id,
                "enrolment_id": enrolment["enrolment_id"],
                "account_id": enrolment["account_id"],
                "requested": balance,
                "up_to": True,
                "status": "requested",
                "requested_at": now,
                "updated_at": now,
            },
        )
        await store.update(
            session,
            "enrolments",
            enrolment["enrolment_id"],
            reservation_id=balance_id,
            updated_at=now,
        )
        events.append(
            EnrolmentRequested(
                enrolment_id=balance_reference(enrolment["enrolment_id"]),
                account_id=enrolment["account_id"],
                reservation_id=balance_id,
                provider_id=enrolment["provider_id"],
                course=course_ref(course),
                course_version=enrolment["course_version"],
                amount=balance,
                up_to=True,
                expires_at=domain.reservation_expiry(p.config, enrolment["ends_on"], now),
            )
        )
    await p.outbox.add(session, events, ctx)


async def release_hold(p: Payments, session: AsyncSession, claim: Row, ctx: EventContext) -> Row:
    """A hold is lifted (approved under four eyes): the claim goes on where it stopped. A
    claim the learner contested counts as resolved: it may be paid once captured."""
    if claim["status"] != "held":
        raise PaymentsError("not_held", f"the claim is {claim['status']}, not held")
    now = p.clock.now()
    if claim.get("attestation") == "contested":
        await change(session, claim, attestation="resolved", updated_at=now)
    if claim["capture_requested"]:
        after = "captured" if claim["captured"] > 0 else "approved"
        return await change(
            session, claim, status=after, held_from=None, hold_reason=None, updated_at=now
        )
    enrolment = await store.get(session, "enrolments", claim["enrolment_id"], lock=True)
    reservation = (
        await store.get(session, "reservations", claim["reservation_id"], lock=True)
        if claim["reservation_id"]
        else None
    )
    if enrolment is None or reservation is None or reservation["status"] != "active":
        await change(session, claim, status="rejected", reason="nothing_reserved", updated_at=now)
        await p.outbox.add(
            session,
            [
                ClaimRejected(
                    claim_id=claim["claim_id"],
                    enrolment_id=claim["enrolment_id"],
                    provider_id=claim["provider_id"],
                    milestone=claim["milestone"],
                    reason="nothing_reserved",
                )
            ],
            ctx,
        )
        return claim
    await request_capture(p, session, claim, enrolment, reservation, ctx)
    return claim


async def hold_provider_claims(
    p: Payments, session: AsyncSession, provider_id: str, reason: str, ctx: EventContext
) -> int:
    """A suspended provider's unpaid claims are held until an agency releases them."""
    now = p.clock.now()
    claims = await store.unpaid_claims_of_provider(session, provider_id)
    events: list[Event] = []
    for claim in claims:
        if claim["payout_id"] is not None:
            continue
        await change(
            session,
            claim,
            held_from=claim["status"],
            status="held",
            hold_reason=reason,
            updated_at=now,
        )
        events.append(
            ClaimHeld(
                claim_id=claim["claim_id"],
                enrolment_id=claim["enrolment_id"],
                provider_id=provider_id,
                milestone=claim["milestone"],
                reason=reason,
            )
        )
    await p.outbox.add(session, events, ctx)
    return len(events)
