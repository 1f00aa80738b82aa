"""Claim endpoints: a provider claims with evidence; the learner attests or contests; the
release of a hold is proposed by the managing agency and approved by finance.

Roles: ``provider`` claims (``Idempotency-Key`` required) and reads its own claims;
``learner`` reads, attests and contests the claims on their own enrolments; ``agency``
reads the claims on the accounts it manages and proposes the release of their holds;
``finance``, ``auditor`` and ``admin`` read every claim (``admin`` may propose releases).
Anything out of the caller's scope answers 404, the same as a claim that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from services.payments import deps
from services.payments.commands import SubmitClaim
from services.payments.deps import (
    Agency,
    Learner,
    Operator,
    Page,
    Provider,
    Runtime,
    ScopedReader,
    ctx_for,
    shown,
)
from services.payments.domain.claims import (
    Attestation,
    Claim,
    ClaimStatus,
    ContestReason,
    Milestone,
)
from services.payments.handlers import attestation, claims, holds
from services.payments.handlers.claims import ClaimOrder
from shared.idempotency import Reply, claim_for
from shared.links import decisions, follow

router = APIRouter(prefix="/v1/claims", tags=["claims"])
CLAIM = "/v1/claims/{claim_id}"


class ClaimPublic(BaseModel):
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    provider_id: str
    account_id: uuid.UUID | None
    milestone: Milestone
    status: ClaimStatus
    reason: str | None
    hold_reason: str | None
    currency: str
    amount: int
    captured: int
    completion_rate: int | None
    evidence: dict[str, Any]
    attestation: Attestation
    attest_until: datetime | None
    attested_at: datetime | None
    contested_at: datetime | None
    contest_reason: str | None
    payout_id: uuid.UUID | None
    claimed_at: datetime
    decided_at: datetime | None
    captured_at: datetime | None
    paid_at: datetime | None


class ClaimPage(Page):
    items: list[ClaimPublic]


class Contest(BaseModel):
    """Why the learner contests the claim: a code, never free text."""

    model_config = ConfigDict(extra="forbid")
    reason_code: ContestReason


def public(claim: Claim, currency: str) -> ClaimPublic:
    return ClaimPublic(
        **shown(claim, ClaimPublic),
        currency=currency,
    )


@router.post(
    "",
    status_code=202,
    response_model=ClaimPublic,
    responses=follow(
        202,
        f"GET {CLAIM}",
        *(f"POST {CLAIM}/{step}" for step in ("attest", "contest", "release")),
        "GET /v1/enrolments/{enrolment_id}",
    ),
)
async def submit_claim(
    cmd: SubmitClaim, request: Request, rt: Runtime, principal: Provider
) -> Response:
    """Claim payment for a milestone (``Idempotency-Key`` required: 428 without it).

    An enrolment that is not the provider's answers 404 ``enrolment_not_found``, exactly as
    one that does not exist. Evidence is checked first (422, nothing recorded): its dates lie
    within the session and never in the future, and a completion is claimed only after the
    session's end (the start milestone of a long session is the one earlier claim). The
    claim is then recorded with the rules' decision: ``approved`` (the ledger captures; then
    ``captured`` → ``in_payout`` → ``paid``), ``held`` or ``rejected`` with the reason. An
    approved or held claim waits for the learner's attestation (``attestation: pending``)."""

    # decided with the claims that arrive together (group commit), its key stored in the
    # same transaction
    key = claim_for(request, principal, cmd, required=True)
    currency = rt.settings.currency

    def respond(claim: Claim) -> Reply:
        body = public(claim, currency).model_dump(mode="json")
        return Reply(202, body, {"Location": f"/v1/claims/{claim.claim_id}"})

    order = ClaimOrder(principal.provider_id or "", cmd, ctx_for(principal))
    reply = await deps.components(rt).claims.submit(order, respond, claim=key)
    return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)


@router.get("", response_model=ClaimPage)
async def list_claims(
    rt: Runtime,
    principal: ScopedReader,
    status: ClaimStatus | None = None,
    provider_id: str | None = None,
    enrolment_id: uuid.UUID | None = None,
    attestation: Attestation | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> ClaimPage:
    """Newest first, within the caller's scope (a provider its own, a learner their own, an
    agency those on the accounts it manages)."""
    page, nxt = await deps.scoped_page(
        rt,
        principal,
        Claim,
        order="claimed_at",
        limit=limit,
        after=after,
        status=status,
        provider_id=provider_id,
        enrolment_id=enrolment_id,
        attestation=attestation,
    )
    return ClaimPage(items=[public(c, rt.settings.currency) for c in page], next=nxt)


@router.get("/{claim_id}", response_model=ClaimPublic, responses=deps.CONDITIONAL)
async def get_claim(
    claim_id: uuid.UUID, request: Request, rt: Runtime, principal: ScopedReader
) -> Response:
    """The claim, with an ``ETag``: sent back in ``If-None-Match``, it gets ``304`` while
    the claim is unchanged, and with ``Prefer: wait=<seconds>`` (at most 20) the answer
    waits for a change first: how to follow a claim to ``captured`` without polling."""
    return await deps.read_scoped(
        request, rt, principal, Claim, claim_id, lambda c: public(c, rt.settings.currency)
    )


@router.post("/{claim_id}/attest", response_model=ClaimPublic)
async def attest_claim(claim_id: uuid.UUID, rt: Runtime, principal: Learner) -> ClaimPublic:
    """The learner attests the training was given, within the attestation window
    (``ILA_PAYMENTS_ATTESTATION_DAYS``, 14 by default): the claim is payable once captured.
    409 ``attestation_window_closed`` or ``not_awaiting_attestation`` otherwise."""
    claim = await deps.decide_on(rt, principal, Claim, claim_id, attestation.attest)
    return public(claim, rt.settings.currency)


@router.post("/{claim_id}/contest", response_model=ClaimPublic)
async def contest_claim(
    claim_id: uuid.UUID, body: Contest, rt: Runtime, principal: Learner
) -> ClaimPublic:
    """The learner contests the claim within the window, with a reason code: the claim is
    held (never paid) until its release is proposed and approved by finance."""
    claim = await deps.decide_on(
        rt, principal, Claim, claim_id, attestation.contest, body.reason_code
    )
    return public(claim, rt.settings.currency)


@router.post(
    "/{claim_id}/release",
    status_code=202,
    responses=follow(202, *decisions("/v1/payments/approvals")),
)
async def release_claim(claim_id: uuid.UUID, rt: Runtime, principal: Agency) -> Response:
    """Propose lifting a hold (fraud, suspension or a learner's contest): an agency that
    manages the learner's account, or an admin, proposes (202 with the proposal, action
    ``claim_release``); finance approves at ``/v1/payments/approvals/{id}/approve``, and the
    claim is then captured and payable."""
    fe = deps.components(rt).four_eyes
    proposal = await deps.decide_on(
        rt, principal, Claim, claim_id, holds.propose_claim_release, principal, fe
    )
    return deps.proposed(proposal, fe.clock())


@router.post("/{claim_id}/retry", response_model=ClaimPublic)
async def retry_claim(claim_id: uuid.UUID, rt: Runtime, principal: Operator) -> ClaimPublic:
    """A claim whose capture the ledger refused (``capture_rejected``) is asked again once
    the cause is removed: from its reservation if it still holds the amount, else from a new
    reservation of the claim's amount (captured as soon as the ledger reserves it). Admin or
    finance; 409 ``not_capture_rejected`` for a claim in any other status."""
    claim = await deps.decide(rt, principal, lambda ctx: claims.retry_capture(claim_id, ctx))
    return public(claim, rt.settings.currency)


@router.post("/{claim_id}/abandon", response_model=ClaimPublic)
async def abandon_claim(claim_id: uuid.UUID, rt: Runtime, principal: Operator) -> ClaimPublic:
    """Give up on a claim whose capture the ledger refused: it is rejected
    (``abandoned_by_operator``) and never paid. Admin or finance."""
    claim = await deps.decide(rt, principal, lambda ctx: claims.abandon(claim_id, ctx))
    return public(claim, rt.settings.currency)
