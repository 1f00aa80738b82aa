"""Enrolment endpoints: a provider proposes, the learner confirms or refuses, either cancels,
an agency reviews what the fraud rules held.

Scope: a provider sees its own enrolments, a learner their own, an agency those of the
accounts it manages (anything else answers 404, the same as a missing enrolment);
``finance``, ``auditor`` and ``admin`` read all. Releasing a held enrolment is proposed by
the managing agency (or an admin) and approved by finance (action ``enrolment_release``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import deps
from services.payments.commands import CancelEnrolment, ConfirmEnrolment, ProposeEnrolment
from services.payments.deps import (
    Agency,
    Learner,
    Operator,
    Page,
    Provider,
    ProviderOrLearner,
    Runtime,
    ScopedReader,
    ctx_for,
    shown,
)
from services.payments.domain.enrolments import Canceller, Enrolment, EnrolmentStatus
from services.payments.handlers import enrolments, holds
from services.payments.handlers.enrolments import ConfirmOrder
from shared.idempotency import Reply, claim_for, run_idempotent
from shared.links import decisions, follow
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/enrolments", tags=["enrolments"])
ENROLMENT = "/v1/enrolments/{enrolment_id}"
DECIDE = decisions("/v1/payments/approvals")


class EnrolmentPublic(BaseModel):
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    course_id: uuid.UUID
    course_version: int
    session_id: uuid.UUID
    starts_on: date
    ends_on: date
    ends_at: datetime | None  # a completion may be claimed from then on
    status: EnrolmentStatus
    reason: str | None
    hold_reason: str | None
    currency: str
    price: int
    participation_fee: int
    fee_exemption: str | None
    requested: int
    covered: int
    co_payment: int
    available_credit: int | None
    accept_co_payment: bool
    captured: int
    released: int
    cancelled_by: str | None
    cancellation_rule: str | None
    proposed_at: datetime
    expires_at: datetime | None
    confirmed_at: datetime | None
    decided_at: datetime | None
    cancelled_at: datetime | None
    guidance_plan_id: uuid.UUID | None = None


class EnrolmentPage(Page):
    items: list[EnrolmentPublic]


def public(enrolment: Enrolment, currency: str) -> EnrolmentPublic:
    return EnrolmentPublic(
        **shown(enrolment, EnrolmentPublic),
        currency=currency,
        available_credit=enrolment.available_at_rejection,
        cancellation_rule=enrolment.cancellation,
    )


def body(rt: ServiceRuntime, enrolment: Enrolment) -> Any:
    return public(enrolment, rt.settings.currency).model_dump(mode="json")


@router.post(
    "",
    status_code=202,
    response_model=EnrolmentPublic,
    responses=follow(
        202,
        f"GET {ENROLMENT}",
        *(
            f"POST {ENROLMENT}/{step}"
            for step in ("confirm", "refuse", "cancel", "release", "reject")
        ),
    ),
)
async def propose(
    cmd: ProposeEnrolment, request: Request, rt: Runtime, principal: Provider
) -> Response:
    """Propose an enrolment; the learner must confirm it before it expires."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = deps.context(rt, session, principal)
        enrolment = await enrolments.propose(principal.provider_id or "", cmd, ctx)
        location = f"/v1/enrolments/{enrolment.enrolment_id}"
        return 202, body(rt, enrolment), {"Location": location}

    return await run_idempotent(rt, request, principal, cmd, effect)


@router.get("", response_model=EnrolmentPage)
async def list_enrolments(
    rt: Runtime,
    principal: ScopedReader,
    status: EnrolmentStatus | None = None,
    provider_id: str | None = None,
    account_id: uuid.UUID | None = None,
    course_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> EnrolmentPage:
    """Newest first; a provider sees its own, a learner their own, an agency those of the
    accounts it manages."""
    page, nxt = await deps.scoped_page(
        rt,
        principal,
        Enrolment,
        order="proposed_at",
        limit=limit,
        after=after,
        status=status,
        provider_id=provider_id,
        account_id=account_id,
        course_id=course_id,
    )
    return EnrolmentPage(items=[public(e, rt.settings.currency) for e in page], next=nxt)


@router.get("/{enrolment_id}", response_model=EnrolmentPublic, responses=deps.CONDITIONAL)
async def get_enrolment(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, principal: ScopedReader
) -> Response:
    """Status and amounts: covered by credit, co-payment (the participation fee included).

    Answered with an ``ETag``; sent back in ``If-None-Match``, it gets ``304`` while the
    enrolment is unchanged, and with ``Prefer: wait=<seconds>`` (at most 20) the answer
    waits for a change first: how to follow an enrolment to ``confirmed`` without polling."""
    return await deps.read_scoped(
        request, rt, principal, Enrolment, enrolment_id, lambda e: public(e, rt.settings.currency)
    )


@router.post(
    "/{enrolment_id}/confirm",
    status_code=202,
    response_model=EnrolmentPublic,
    responses=follow(202, f"GET {ENROLMENT}", f"POST {ENROLMENT}/cancel"),
)
async def confirm(
    enrolment_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    principal: Learner,
    cmd: ConfirmEnrolment | None = None,
) -> Response:
    """The learner consents: credit is reserved (``reserving`` → ``confirmed``/``rejected``).
    A consent after the deadline expires the proposal for good and is refused (409
    ``confirmation_expired``)."""
    cmd = cmd or ConfirmEnrolment()
    # decided with the confirmations that arrive together (group commit), its key (if any)
    # stored in the same transaction
    key = claim_for(request, principal, cmd, required=False)

    def respond(enrolment: Enrolment) -> Reply:
        return Reply(202, body(rt, enrolment), {"Location": f"/v1/enrolments/{enrolment_id}"})

    order = ConfirmOrder(enrolment_id, principal.account_id, cmd, ctx_for(principal))
    reply = await deps.components(rt).confirmations.submit(order, respond, claim=key)
    return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)


@router.post("/{enrolment_id}/refuse", response_model=EnrolmentPublic)
async def refuse(enrolment_id: uuid.UUID, rt: Runtime, principal: Learner) -> EnrolmentPublic:
    """The learner refuses: nothing is reserved, the seat is free again."""
    enrolment = await deps.decide_on(rt, principal, Enrolment, enrolment_id, enrolments.refuse)
    return public(enrolment, rt.settings.currency)


@router.post("/{enrolment_id}/cancel", status_code=202, response_model=EnrolmentPublic)
async def cancel(
    enrolment_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    principal: ProviderOrLearner,
    cmd: CancelEnrolment | None = None,
) -> Response:
    """Cancel under the rules: within the withdrawal period or by the provider, all the credit
    comes back; a late cancellation by the learner leaves the provider a small share."""
    cmd = cmd or CancelEnrolment()
    by: Canceller = "provider" if principal.role == "provider" else "learner"
    reason = cmd.reason_code

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        enrolment = await deps.decide_on(
            rt, principal, Enrolment, enrolment_id, enrolments.cancel, by, reason, session=session
        )
        return 202, body(rt, enrolment), {}

    return await run_idempotent(rt, request, principal, cmd, effect)


@router.post("/{enrolment_id}/release", status_code=202, responses=follow(202, *DECIDE))
async def release_hold(enrolment_id: uuid.UUID, rt: Runtime, principal: Agency) -> Response:
    """Propose letting an enrolment the velocity rule held go to the learner for consent: an
    agency that manages the learner's account, or an admin, proposes (202 with the proposal,
    action ``enrolment_release``); finance approves at
    ``/v1/payments/approvals/{id}/approve``, and the enrolment then awaits the learner."""
    fe = deps.components(rt).four_eyes
    proposal = await deps.decide_on(
        rt, principal, Enrolment, enrolment_id, holds.propose_enrolment_release, principal, fe
    )
    return deps.proposed(proposal, fe.clock())


@router.post("/{enrolment_id}/reject", response_model=EnrolmentPublic)
async def reject_held(enrolment_id: uuid.UUID, rt: Runtime, principal: Agency) -> EnrolmentPublic:
    """An agency that manages the learner's account (or an admin) rejects an enrolment the
    velocity rule held: nothing was reserved, nothing moves."""
    enrolment = await deps.decide_on(
        rt, principal, Enrolment, enrolment_id, enrolments.review, False
    )
    return public(enrolment, rt.settings.currency)


@router.post("/{enrolment_id}/retry", response_model=EnrolmentPublic)
async def retry_enrolment(
    enrolment_id: uuid.UUID, rt: Runtime, principal: Operator
) -> EnrolmentPublic:
    """An enrolment whose request the ledger refused as written (``reservation_rejected``)
    is asked again, under a new reservation id (``reserving``). Admin or finance; 409
    ``not_reservation_rejected`` for an enrolment in any other status."""
    enrolment = await deps.decide(
        rt, principal, lambda ctx: enrolments.retry_reservation(enrolment_id, ctx)
    )
    return public(enrolment, rt.settings.currency)


@router.post("/{enrolment_id}/abandon", response_model=EnrolmentPublic)
async def abandon_enrolment(
    enrolment_id: uuid.UUID, rt: Runtime, principal: Operator
) -> EnrolmentPublic:
    """Give up on an enrolment the ledger refused: it is rejected (``abandoned_by_operator``)
    and its seat is free. Admin or finance."""
    enrolment = await deps.decide(rt, principal, lambda ctx: enrolments.abandon(enrolment_id, ctx))
    return public(enrolment, rt.settings.currency)
