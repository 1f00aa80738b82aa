"""Paid training leave: the learner asks, the employer decides (or lets the request lapse),
and on completion claims wage compensation, which the leave fund's budget pays in the ledger
(``LeaveCompensationClaimed`` → ``BudgetPaidOut`` or ``BudgetPayoutRefused``). The claim is
then paid to the employer's payee by the payout runs, released under four eyes like every
payout. Decisions are :mod:`services.payments.domain.leave`'s; this module loads, stores and
stages events.

An employer acts on the requests that name it; any other request answers 404, the same as
one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.commands import SetPayee
from services.payments.domain import leave as rules
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import Unknown
from services.payments.domain.leave import Asked, LeaveRequest, Standing
from services.payments.handlers import Context, Payments, payees
from services.payments.store import leave as store
from services.payments.store import read_models, rows
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.events import Envelope
from shared.events.base import Event
from shared.events.leave import (
    BudgetPaidOut,
    BudgetPayoutRefused,
    FunderRegistered,
    LeaveApprovalCode,
    LeaveRefusalCode,
)
from shared.inbox import EventConsumer
from shared.outbox import EventContext

SWEEP_BATCH = 200


def not_found(request_id: uuid.UUID) -> Unknown:
    return Unknown("leave_request_not_found", f"no leave request {request_id}")


async def ask(
    enrolment_id: uuid.UUID,
    account_id: uuid.UUID | None,
    *,
    employer_funder_id: str,
    hours: int,
    dates: Sequence[date],
    ctx: Context,
) -> LeaveRequest:
    """The learner of the enrolment (``account_id``) asks their employer for leave."""
    session = ctx.session
    enrolment = await rows.get(session, Enrolment, enrolment_id, lock=True)
    if enrolment is None or enrolment.account_id != account_id:
        # another learner's enrolment answers exactly like one that does not exist
        raise Unknown("enrolment_not_found", f"no enrolment {enrolment_id}")
    account = await read_models.account(session, enrolment.account_id)
    standing = Standing(
        employment_status=account.employment_status if account else None,
        employer_kind=await store.funder_kind(session, employer_funder_id),
        workload_hours=await store.workload(session, enrolment.course_id),
        live_request=await store.has_live_request(session, enrolment_id),
    )
    request, events = rules.ask(
        ctx.config.leave,
        enrolment,
        Asked(employer_funder_id, hours, tuple(dates)),
        standing,
        request_id=uuid.uuid4(),
        actor=ctx.actor,
        now=ctx.now,
    )
    await rows.insert(session, request)
    await ctx.emit(*events)
    return request


async def _employers(
    session: AsyncSession, request_id: uuid.UUID, funder_id: str | None
) -> LeaveRequest:
    """The request, locked, when it names the employer ``funder_id``; else a 404."""
    request = await rows.get(session, LeaveRequest, request_id, lock=True)
    if request is None or funder_id is None or request.employer_funder_id != funder_id:
        raise not_found(request_id)
    return request


async def approve(
    request_id: uuid.UUID,
    funder_id: str | None,
    reason_code: LeaveApprovalCode,
    note: str | None,
    ctx: Context,
) -> LeaveRequest:
    request = await _employers(ctx.session, request_id, funder_id)
    return await ctx.apply(request, rules.approve(request, reason_code, note, ctx.actor, ctx.now))


async def refuse(
    request_id: uuid.UUID,
    funder_id: str | None,
    reason_code: LeaveRefusalCode,
    note: str | None,
    ctx: Context,
) -> LeaveRequest:
    request = await _employers(ctx.session, request_id, funder_id)
    return await ctx.apply(request, rules.refuse(request, reason_code, note, ctx.actor, ctx.now))


async def seen(request: LeaveRequest, ctx: Context) -> LeaveRequest:
    """The request as it stands now: one past its deadline unanswered lapses as it is read."""
    if not rules.due(request, ctx.now):
        return request
    locked = await rows.get(ctx.session, LeaveRequest, request.request_id, lock=True)
    assert locked is not None
    return await ctx.apply(locked, rules.lapse(locked, ctx.now))


async def lapse_due(ctx: Context) -> int:
    """Lapse one batch of requests past their deadline; how many."""
    due = await store.due_requests(ctx.session, ctx.now, SWEEP_BATCH)
    for request in due:
        await ctx.apply(request, rules.lapse(request, ctx.now))
    return len(due)


async def claim_compensation(
    request_id: uuid.UUID, funder_id: str | None, ctx: Context
) -> tuple[LeaveRequest, Claim]:
    """The employer claims the wage compensation of its approved leave, once the training
    completed: a claim to its payee, which the ledger is asked to pay from the leave fund."""
    session = ctx.session
    request = await _employers(session, request_id, funder_id)
    enrolment = await rows.get(session, Enrolment, request.enrolment_id, lock=True)
    assert enrolment is not None
    after, claim, events = rules.claim_compensation(
        ctx.config.leave, request, enrolment, claim_id=uuid.uuid4(), actor=ctx.actor, now=ctx.now
    )
    await rows.insert(session, claim)
    await rows.save(session, request, after)
    await ctx.emit(*events)
    return after, claim


async def _compensation(
    session: AsyncSession, claim_id: uuid.UUID
) -> tuple[Claim, LeaveRequest] | None:
    claim = await rows.get(session, Claim, claim_id, lock=True)
    if claim is None or claim.milestone != rules.COMPENSATION:
        return None  # not a compensation of ours
    request = await store.request_of_claim(session, claim_id)
    return (claim, request) if request is not None else None


Answer = Callable[[LeaveRequest, Claim], tuple[LeaveRequest, Claim, list[Event]]]


async def _answered(claim_id: uuid.UUID, answer: Answer, ctx: Context) -> None:
    """The ledger's answer to a compensation claim (nothing for another claim)."""
    found = await _compensation(ctx.session, claim_id)
    if found is None:
        return
    claim, request = found
    after, claim_after, events = answer(request, claim)
    await rows.save(ctx.session, claim, claim_after)
    await ctx.apply(request, (after, events))


async def on_paid_out(event: BudgetPaidOut, ctx: Context) -> None:
    """The leave fund's budget paid the claim: captured, payable to the employer."""
    await _answered(event.claim_id, lambda r, c: rules.paid_out(r, c, event.amount, ctx.now), ctx)


async def on_payout_refused(event: BudgetPayoutRefused, ctx: Context) -> None:
    """The ledger refused to pay the claim from the fund: nothing is paid."""
    await _answered(
        event.claim_id, lambda r, c: rules.payout_refused(r, c, event.reason, ctx.now), ctx
    )


async def propose_payee(
    funder_id: str, cmd: SetPayee, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """The employer proposes the bank details its compensation is paid to (payee
    ``employer:<funder_id>``); finance approves them, and verifies them with the bank before
    the cooling-off period ends, as for a provider."""
    return await payees.propose_change(
        rules.employer_payee(funder_id), cmd, principal, fe, ctx, agency_id=None
    )


def register(consumer: EventConsumer, payments: Payments) -> None:
    """The ledger's funders (read model) and its answers to compensation claims."""

    @consumer.on(FunderRegistered)
    async def _funder(session: AsyncSession, env: Envelope, event: FunderRegistered) -> None:
        await store.put_funder(session, event.funder_id, event.kind, event.occurred_at)

    @consumer.on(BudgetPaidOut)
    async def _paid(session: AsyncSession, env: Envelope, event: BudgetPaidOut) -> None:
        await on_paid_out(event, payments.context(session, EventContext.caused_by(env)))

    @consumer.on(BudgetPayoutRefused)
    async def _refused(session: AsyncSession, env: Envelope, event: BudgetPayoutRefused) -> None:
        await on_payout_refused(event, payments.context(session, EventContext.caused_by(env)))
