"""Paid training leave endpoints.

- ``POST /v1/enrolments/{id}/leave-requests`` — the learner of a confirmed enrolment, in
  work, asks their employer (``employer_funder_id``: a funder of kind ``employer``) for
  ``hours`` of leave on ``dates`` of the session: 201, ``requested``, with ``decide_by``
  (``ILA_LEAVE_DECISION_DAYS`` after the request, never past the session's start).
- ``GET /v1/leave-requests/{id}`` — the learner, the employer it names, ``finance``,
  ``auditor``, ``admin``; a request past its deadline unanswered reads (and is recorded as)
  ``lapsed``. ``GET /v1/enrolments/{id}/leave-requests``: the enrolment's requests.
- ``POST /v1/leave-requests/{id}/approve`` and ``/refuse`` — the employer it names (a
  ``funder`` token with that ``funder_id``), before the deadline, with a ``reason_code``
  and an optional ``note`` kept only in payments' table; another employer: 404.
- ``POST /v1/leave-requests/{id}/compensation-claims`` — the employer, once the training
  completed: 201, a claim of the wage compensation (hours x ``ILA_LEAVE_HOURLY_RATE_CENTS``,
  at most ``ILA_LEAVE_CAP_CENTS``) that the leave fund's budget (``ILA_LEAVE_FUND_ID``) pays
  in the ledger; a second claim: 409 ``compensation_claimed``.
- ``PUT /v1/employers/{funder_id}/payee`` — the employer proposes the bank details its
  compensation is paid to (payee ``employer:<funder_id>``): 202, approved by ``finance``
  (``POST /v1/payees/employer:<funder_id>/verification`` records the bank's check).
  ``GET /v1/employers/{funder_id}/payee``: the employer, ``finance``, ``auditor``, ``admin``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.payments import deps
from services.payments.api.claims import ClaimPublic
from services.payments.api.claims import public as claim_public
from services.payments.api.payees import PayeePublic, payee_public
from services.payments.commands import SetPayee
from services.payments.deps import NATIONAL, Learner, Runtime, components, proposed, shown
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import Unknown
from services.payments.domain.leave import LeaveRequest, LeaveStatus, employer_payee
from services.payments.handlers import leave
from services.payments.handlers import payees as payee_handlers
from services.payments.store import leave as store
from services.payments.store import payees as payee_store
from services.payments.store import rows
from shared.auth import Principal, require
from shared.events.budgets import FunderId
from shared.events.leave import LeaveApprovalCode, LeaveRefusalCode
from shared.links import decisions, follow

router = APIRouter(tags=["leave"])
REQUEST = "/v1/leave-requests/{request_id}"

Employer = Annotated[Principal, Depends(require("funder"))]
LeaveReader = Annotated[Principal, Depends(require("learner", "funder", *NATIONAL))]
EmployerReader = Annotated[Principal, Depends(require("funder", *NATIONAL))]


class LeaveAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    employer_funder_id: FunderId
    hours: StrictInt = Field(gt=0, le=2_000, description="hours of leave, paid by the employer")
    dates: list[date] = Field(min_length=1, max_length=366, description="the days of leave")


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(
        default=None, max_length=500, description="kept in payments' table only, never published"
    )


class Approval(Note):
    reason_code: LeaveApprovalCode = "statutory_entitlement"


class Refusal(Note):
    reason_code: LeaveRefusalCode


class LeavePublic(BaseModel):
    request_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    employer_funder_id: str
    hours: int
    dates: list[date]
    status: LeaveStatus
    decide_by: datetime
    requested_at: datetime
    reason_code: str | None
    note: str | None
    decided_at: datetime | None
    claim_id: uuid.UUID | None
    compensation: int
    compensation_refused: str | None
    compensated_at: datetime | None
    currency: str


class CompensationClaimed(BaseModel):
    leave_request: LeavePublic
    claim: ClaimPublic


def public(request: LeaveRequest, currency: str, *, employer: bool) -> LeavePublic:
    """The request; the employer's note only for the employer and the national roles."""
    fields = shown(request, LeavePublic)
    if not employer:
        fields["note"] = None
    return LeavePublic(**fields, currency=currency)


def _sees(principal: Principal, request: LeaveRequest) -> bool:
    if principal.role in NATIONAL:
        return True
    if principal.role == "funder":
        return principal.funder_id == request.employer_funder_id
    return principal.role == "learner" and principal.account_id == request.account_id


@router.post(
    "/v1/enrolments/{enrolment_id}/leave-requests",
    status_code=201,
    response_model=LeavePublic,
    responses=follow(201, f"GET {REQUEST}", request_id="$response.body#/request_id"),
)
async def ask_leave(
    enrolment_id: uuid.UUID, body: LeaveAsk, rt: Runtime, principal: Learner
) -> JSONResponse:
    """Ask the employer for paid leave to attend the enrolment's session."""
    request = await deps.decide(
        rt,
        principal,
        lambda ctx: leave.ask(
            enrolment_id,
            principal.account_id,
            employer_funder_id=body.employer_funder_id,
            hours=body.hours,
            dates=body.dates,
            ctx=ctx,
        ),
    )
    reply = public(request, rt.settings.currency, employer=False).model_dump(mode="json")
    return JSONResponse(
        reply, status_code=201, headers={"Location": f"/v1/leave-requests/{request.request_id}"}
    )


@router.get("/v1/enrolments/{enrolment_id}/leave-requests", response_model=list[LeavePublic])
async def enrolment_leave(
    enrolment_id: uuid.UUID, rt: Runtime, principal: LeaveReader
) -> list[LeavePublic]:
    """The enrolment's leave requests (those the caller may see), oldest first."""
    async with rt.uow() as session:
        enrolment = await rows.get(session, Enrolment, enrolment_id)
        found = await store.requests_of(session, enrolment_id) if enrolment else []
        visible = [r for r in found if _sees(principal, r)]
        allowed = (
            principal.role in NATIONAL
            or (principal.role == "funder" and bool(visible))
            or (enrolment is not None and enrolment.account_id == principal.account_id)
        )
        if enrolment is None or not allowed:
            raise Unknown("enrolment_not_found", f"no enrolment {enrolment_id}")
        ctx = deps.context(rt, session, principal)
        current = [await leave.seen(r, ctx) for r in visible]
    employer = principal.role != "learner"
    return [public(r, rt.settings.currency, employer=employer) for r in current]


@router.get(REQUEST, response_model=LeavePublic)
async def get_leave(request_id: uuid.UUID, rt: Runtime, principal: LeaveReader) -> LeavePublic:
    """The request as it stands (lapsed once its deadline passed unanswered)."""
    async with rt.uow() as session:
        request = await rows.get(session, LeaveRequest, request_id)
        if request is None or not _sees(principal, request):
            raise leave.not_found(request_id)
        request = await leave.seen(request, deps.context(rt, session, principal))
    return public(request, rt.settings.currency, employer=principal.role != "learner")


@router.post(f"{REQUEST}/approve", response_model=LeavePublic)
async def approve_leave(
    request_id: uuid.UUID, body: Approval, rt: Runtime, principal: Employer
) -> LeavePublic:
    """The employer grants the leave (before ``decide_by``: 409 after)."""
    request = await deps.decide(
        rt,
        principal,
        lambda ctx: leave.approve(
            request_id, principal.funder_id, body.reason_code, body.note, ctx
        ),
    )
    return public(request, rt.settings.currency, employer=True)


@router.post(f"{REQUEST}/refuse", response_model=LeavePublic)
async def refuse_leave(
    request_id: uuid.UUID, body: Refusal, rt: Runtime, principal: Employer
) -> LeavePublic:
    """The employer refuses the leave with a reason code; the enrolment is untouched."""
    request = await deps.decide(
        rt,
        principal,
        lambda ctx: leave.refuse(request_id, principal.funder_id, body.reason_code, body.note, ctx),
    )
    return public(request, rt.settings.currency, employer=True)


@router.post(
    f"{REQUEST}/compensation-claims",
    status_code=201,
    response_model=CompensationClaimed,
    responses=follow(201, f"GET {REQUEST}", request_id="$request.path.request_id"),
)
async def claim_compensation(
    request_id: uuid.UUID, rt: Runtime, principal: Employer
) -> CompensationClaimed:
    """The employer claims the wage compensation of the leave once the training completed;
    the ledger pays it from the leave fund's budget (the claim is then ``captured``) or
    refuses it (``rejected``, the request ``approved`` again with ``compensation_refused``)."""
    request, claim = await deps.decide(
        rt, principal, lambda ctx: leave.claim_compensation(request_id, principal.funder_id, ctx)
    )
    currency = rt.settings.currency
    return CompensationClaimed(
        leave_request=public(request, currency, employer=True),
        claim=claim_public(claim, currency),
    )


def _own_employer(principal: Principal, funder_id: str) -> None:
    if principal.role == "funder" and principal.funder_id != funder_id:
        raise payee_handlers.not_found(employer_payee(funder_id))


@router.put(
    "/v1/employers/{funder_id}/payee",
    status_code=202,
    responses=follow(
        202, "GET /v1/employers/{funder_id}/payee", *decisions("/v1/payments/approvals")
    ),
)
async def propose_employer_payee(
    funder_id: str, cmd: SetPayee, rt: Runtime, principal: Employer
) -> Any:
    """The employer proposes the bank details its leave compensation is paid to."""
    _own_employer(principal, funder_id)
    c = components(rt)
    async with rt.uow() as session:
        if await store.funder_kind(session, funder_id) != "employer":
            raise payee_handlers.not_found(employer_payee(funder_id))
        ctx = c.context(session, deps.ctx_for(principal))
        proposal = await leave.propose_payee(funder_id, cmd, principal, c.four_eyes, ctx)
    return proposed(proposal, c.four_eyes.clock())


@router.get("/v1/employers/{funder_id}/payee", response_model=PayeePublic)
async def get_employer_payee(funder_id: str, rt: Runtime, principal: EmployerReader) -> PayeePublic:
    """Where the employer's compensation is paid, and whether payouts to it wait."""
    _own_employer(principal, funder_id)
    c = components(rt)
    payee_id = employer_payee(funder_id)
    async with rt.sessions() as session:
        payee = await payee_store.payee(session, payee_id)
        if payee is None:
            raise payee_handlers.not_found(payee_id)
        pending = await c.four_eyes.pending_for(
            session, payee_handlers.CHANGE, payee_handlers.payee_subject(payee_id)
        )
    return payee_public(c, payee, str(pending.approval_id) if pending is not None else None)
