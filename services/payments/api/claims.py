"""Claim endpoints: a provider claims with evidence; an agency releases fraud holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import store
from services.payments.api.common import (
    Agency,
    Page,
    Provider,
    ProviderReader,
    Runtime,
    ctx_for,
    payments_of,
    problem,
    scope_filters,
    visible,
)
from services.payments.commands import SubmitClaim
from services.payments.domain import ClaimStatus, Milestone, PaymentsError
from services.payments.handlers import claims
from shared.idempotency import run_idempotent
from shared.problems import NotFound

router = APIRouter(prefix="/v1/claims", tags=["claims"])


class ClaimPublic(BaseModel):
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    provider_id: str
    milestone: Milestone
    status: ClaimStatus
    reason: str | None
    hold_reason: str | None
    currency: str
    amount: int
    captured: int
    completion_rate: int | None
    evidence: dict[str, Any]
    payout_id: uuid.UUID | None
    claimed_at: datetime
    decided_at: datetime | None
    captured_at: datetime | None
    paid_at: datetime | None


class ClaimPage(Page):
    items: list[ClaimPublic]


def public(row: dict[str, Any], currency: str) -> ClaimPublic:
    return ClaimPublic(
        **{k: v for k, v in row.items() if k in ClaimPublic.model_fields}, currency=currency
    )


@router.post("", status_code=202, response_model=ClaimPublic)
async def submit_claim(
    cmd: SubmitClaim, request: Request, rt: Runtime, principal: Provider
) -> Response:
    """Claim payment for a milestone. The claim is recorded with the rules' decision:
    ``approved`` (the ledger captures; then ``captured`` → ``in_payout`` → ``paid``),
    ``held`` (fraud hold) or ``rejected`` with the reason."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        try:
            row = await claims.submit(
                payments_of(rt),
                session,
                principal.provider_id or "",
                cmd,
                principal.actor,
                ctx_for(request, principal),
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
        reply = public(row, rt.settings.currency).model_dump(mode="json")
        return 202, reply, {"Location": f"/v1/claims/{row['claim_id']}"}

    return await run_idempotent(
        rt.sessions, "payments", request, principal, cmd.model_dump(mode="json"), effect
    )


@router.get("", response_model=ClaimPage)
async def list_claims(
    rt: Runtime,
    principal: ProviderReader,
    status: ClaimStatus | None = None,
    provider_id: str | None = None,
    enrolment_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> ClaimPage:
    """Newest first; a provider sees its own."""
    filters = scope_filters(
        principal, status=status, provider_id=provider_id, enrolment_id=enrolment_id
    )
    async with rt.sessions() as session:
        rows = await store.page(
            session, "claims", filters, order="claimed_at", limit=limit, after=after
        )
    return ClaimPage(
        items=[public(r, rt.settings.currency) for r in rows],
        next=str(rows[-1]["claim_id"]) if len(rows) == limit else None,
    )


@router.get("/{claim_id}", response_model=ClaimPublic)
async def get_claim(claim_id: uuid.UUID, rt: Runtime, principal: ProviderReader) -> ClaimPublic:
    async with rt.sessions() as session:
        row = await store.get(session, "claims", claim_id)
    return public(visible(principal, row, "claim", claim_id), rt.settings.currency)


@router.post("/{claim_id}/release", response_model=ClaimPublic)
async def release_claim(
    claim_id: uuid.UUID, request: Request, rt: Runtime, principal: Agency
) -> ClaimPublic:
    """An agency lifts a fraud hold: the claim is captured and becomes payable."""
    async with rt.uow() as session:
        row = await store.get(session, "claims", claim_id, lock=True)
        if row is None:
            raise NotFound(f"no claim {claim_id}")
        try:
            row = await claims.release_hold(
                payments_of(rt), session, row, ctx_for(request, principal)
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
    return public(row, rt.settings.currency)
