"""Claims: a provider claims payment for a milestone with evidence; the rules approve, hold or
reject it; an approved claim asks the ledger to capture; a hold is released under four eyes
(:mod:`services.payments.handlers.holds`); the learner attests or contests
(:mod:`services.payments.handlers.attestation`). Decisions are
:mod:`services.payments.domain.claims`'s; this module loads, stores and stages events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.commands import SubmitClaim
from services.payments.domain import claims as rules
from services.payments.domain import enrolments as enrolment_rules
from services.payments.domain import reservations, submission
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import PaymentsError, Unknown
from services.payments.domain.reservations import Reservation
from services.payments.handlers import Context
from services.payments.store import claims as store
from services.payments.store import read_models, rows
from shared.errors import DomainError
from shared.events.base import Event
from shared.outbox import EventContext


@dataclass(frozen=True)
class ClaimOrder:
    """One provider's claim in a batch, with what caused it (its claimant is the actor)."""

    provider_id: str
    command: SubmitClaim
    events: EventContext


async def submit_many(orders: Sequence[ClaimOrder], ctx: Context) -> list[Claim | DomainError]:
    """Record each provider's claim with the rules' decision (``approved``, ``held`` or
    ``rejected``), in the context's transaction, each with its own cause (its claimant is
    that cause's actor). At most one claim per enrolment (the caller's to ensure: each
    claim is decided on its enrolment's earlier claims). The enrolments are locked in one
    statement, in key order, and what the claims are decided on (their reservations, locked
    in key order, their enrolments' earlier claims, their providers' standing) read in one
    more; a refused claim is answered alone with its error; the claims decided are written
    in one statement and their events in one more."""
    session = ctx.session
    enrolments = await rows.get_many(
        session, Enrolment, {o.command.enrolment_id for o in orders}, lock=True
    )
    results: dict[int, Claim | DomainError] = {}
    ready: list[tuple[int, Enrolment]] = []
    for i, order in enumerate(orders):
        enrolment = enrolments.get(order.command.enrolment_id)
        try:
            ready.append((i, _claimable(order.provider_id, order.command, enrolment, ctx.now)))
        except DomainError as refused:
            results[i] = refused
    # what each claimable one is decided on, read in one statement for the batch
    inputs = await store.submission_inputs_many(
        session,
        [(e.reservation_id, e.enrolment_id, orders[i].provider_id) for i, e in ready],
        ctx.now.date(),
    )
    decided: list[Claim] = []
    envelopes = []
    for (i, enrolment), read in zip(ready, inputs, strict=True):
        order = orders[i]
        own = replace(ctx, events=order.events)
        try:
            claim, events = _decided(order.provider_id, order.command, enrolment, read, own)
        except DomainError as refused:
            results[i] = refused
            continue
        results[i] = claim
        decided.append(claim)
        envelopes += [ctx.outbox.envelope(e, order.events) for e in events]
    await rows.insert_many(session, decided)
    await ctx.outbox.add_envelopes(session, envelopes)
    return [results[i] for i in range(len(orders))]


def _claimable(
    provider_id: str, cmd: SubmitClaim, enrolment: Enrolment | None, now: datetime
) -> Enrolment:
    """``enrolment`` (locked by the caller), when ``provider_id`` may claim on it with
    ``cmd``'s evidence; else the refusal."""
    if enrolment is None or enrolment.provider_id != provider_id:
        # another provider's enrolment answers exactly like one that does not exist
        raise Unknown("enrolment_not_found", f"no enrolment {cmd.enrolment_id}")
    submission.check_claim_evidence(
        milestone=cmd.milestone,
        started_on=cmd.evidence.started_on,
        completed_on=cmd.evidence.completed_on,
        attendance_hours=cmd.evidence.attendance_hours,
        starts_on=enrolment.starts_on,
        ends_on=enrolment.ends_on,
        ends_at=enrolment.ends_at,
        now=now,
    )
    return enrolment


def _decided(
    provider_id: str,
    cmd: SubmitClaim,
    enrolment: Enrolment,
    read: store.Submission,
    ctx: Context,
) -> tuple[Claim, list[Event]]:
    """The claim ``provider_id`` submits on ``enrolment`` (claimable), decided by the rules
    on what was ``read`` for it, and its events; nothing written yet."""
    now = ctx.now
    reservation, earlier, provider_status = read
    subject = submission.ClaimSubject(
        provider_id=enrolment.provider_id,
        status=enrolment.status,
        price=enrolment.price,
        covered=enrolment.covered,
        captured=enrolment.captured,
        starts_on=enrolment.starts_on,
        ends_on=enrolment.ends_on,
        reservation_status=reservation.status if reservation else None,
        reserved_now=reservation.held if reservation else 0,
    )
    decision = submission.decide_claim(
        ctx.config,
        claimant=provider_id,
        subject=subject,
        milestone=cmd.milestone,
        completion_rate=cmd.evidence.completion_rate,
        earlier_claims=earlier,
        provider_status=provider_status,
        today=now.date(),
    )
    claim, events = submission.recorded(
        ctx.config,
        decision,
        claim_id=uuid.uuid4(),
        enrolment_id=cmd.enrolment_id,
        provider_id=provider_id,
        account_id=enrolment.account_id,
        reservation_id=reservation.reservation_id if reservation else None,
        milestone=cmd.milestone,
        completion_rate=cmd.evidence.completion_rate,
        evidence=cmd.evidence.model_dump(mode="json"),
        actor=ctx.actor,
        now=now,
    )
    if decision.status == "approved":
        # the capture is asked for at once: the claim is stored as that leaves it
        assert reservation is not None
        claim, asked = rules.request_capture(claim, enrolment, reservation, now)
        events = [*events, *asked]
    return claim, list(events)


async def request_capture(
    claim: Claim, enrolment: Enrolment, reservation: Reservation, ctx: Context
) -> Claim:
    """Ask the ledger to capture the claim's amount as a part of the enrolment's reservation
    (a start advance leaves the rest reserved for the completion: no new reservation)."""
    return await ctx.apply(claim, rules.request_capture(claim, enrolment, reservation, ctx.now))


async def retry_capture(claim_id: uuid.UUID, ctx: Context) -> Claim:
    """An operator retries a claim whose capture the ledger refused, once the cause is
    removed: from its reservation when it still holds the amount, else from a new one
    asked for the claim's amount (its capture follows the ledger's answer)."""
    session, now = ctx.session, ctx.now
    claim = await _load(session, claim_id)
    enrolment = await rows.get(session, Enrolment, claim.enrolment_id, lock=True)
    assert enrolment is not None
    reservation = (
        await rows.get(session, Reservation, claim.reservation_id, lock=True)
        if claim.reservation_id
        else None
    )
    if reservation is None or reservation.status != "active" or reservation.held < claim.amount:
        course = await read_models.course(session, enrolment.course_id)
        if course is None:
            raise PaymentsError("course_not_found", "the course left the read model")
        reservation = reservations.request(
            reservation_id=uuid.uuid4(),
            enrolment_id=enrolment.enrolment_id,
            account_id=enrolment.account_id,
            amount=claim.amount,
            up_to=False,
            now=now,
        )
        await rows.insert(session, reservation)
        request = enrolment_rules.credit_requested(
            ctx.config,
            enrolment,
            enrolment.enrolment_id,
            course,
            reservation.reservation_id,
            claim.amount,
            False,
            now,
        )
        await ctx.emit(request)
    return await ctx.apply(claim, rules.retry_capture(claim, enrolment, reservation, now))


async def abandon(claim_id: uuid.UUID, ctx: Context) -> Claim:
    """An operator gives up on a claim whose capture the ledger refused (nothing is paid)."""
    claim = await _load(ctx.session, claim_id)
    return await ctx.apply(claim, rules.abandon(claim, ctx.now))


async def _load(session: AsyncSession, claim_id: uuid.UUID) -> Claim:
    claim = await rows.get(session, Claim, claim_id, lock=True)
    if claim is None:
        raise Unknown("claim_not_found", f"no claim {claim_id}")
    return claim


async def release_hold(claim: Claim, ctx: Context) -> Claim:
    """A hold is lifted (approved under four eyes): the claim goes on where it stopped. A
    claim the learner contested counts as resolved: it may be paid once captured."""
    session, now = ctx.session, ctx.now
    lifted = rules.lift_hold(claim, now)
    await rows.save(session, claim, lifted)
    if lifted.status != "held":
        return lifted
    enrolment = await rows.get(session, Enrolment, lifted.enrolment_id, lock=True)
    reservation = (
        await rows.get(session, Reservation, lifted.reservation_id, lock=True)
        if lifted.reservation_id
        else None
    )
    if enrolment is None or reservation is None or reservation.status != "active":
        return await ctx.apply(lifted, rules.nothing_reserved(lifted, now))
    return await request_capture(lifted, enrolment, reservation, ctx)


async def hold_provider_claims(provider_id: str, reason: str, ctx: Context) -> int:
    """A suspended provider's unpaid claims are held until an agency releases them."""
    events: list[Event] = []
    for claim in await store.unpaid_claims_of_provider(ctx.session, provider_id):
        if claim.payout_id is not None:
            continue
        after, held = rules.hold(claim, reason, ctx.now)
        await rows.save(ctx.session, claim, after)
        events.extend(held)
    await ctx.emit(*events)
    return len(events)
