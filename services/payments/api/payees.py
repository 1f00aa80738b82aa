"""Payee endpoints: the bank account each provider is paid to.

- ``PUT /v1/payees/{provider_id}`` — the provider itself or the agency that registered it
  proposes new details (``name``, ``iban``, ``bic``): 202 with the proposal (action
  ``payee``, subject ``payee:<provider_id>``) and ``Location`` at the proposal; ``finance``
  approves it at ``/v1/payments/approvals/{id}/approve``, then the details apply (event
  ``payments.PayeeChanged`` with both IBANs masked). Anyone else: 404.
- ``GET /v1/payees/{provider_id}`` — the provider, its registering agency, ``finance``,
  ``admin``, ``auditor``; shows whether payouts to the details are held by the cooling-off
  period (``ILA_PAYMENTS_PAYEE_COOLING_OFF_DAYS``, default 7) and until when.
- ``POST /v1/payees/{provider_id}/verification`` — ``finance`` records a verification of
  payee with the bank (``{"iban": ..., "result": "match"}``); a match lifts the cooling-off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.payments import store
from services.payments.api.common import Runtime, ctx_for, payments_of
from services.payments.commands import SetPayee, VerifyPayee
from services.payments.handlers import Payments, payees
from services.payments.payout_rules import payee_standing
from shared.approvals_api import four_eyes_of
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/payees", tags=["payees"])

Proposer = Annotated[Principal, Depends(require("provider", "agency"))]
Reader = Annotated[Principal, Depends(require("provider", "agency", "finance", "admin", "auditor"))]
Verifier = Annotated[Principal, Depends(require("finance"))]


class PayeePublic(BaseModel):
    provider_id: str
    name: str
    iban: str
    bic: str | None
    source: str
    effective_at: datetime
    verified_at: datetime | None
    payable: bool
    held_until: datetime | None
    pending_approval_id: str | None = None
    updated_by: str
    updated_at: datetime


def payee_public(p: Payments, row: dict[str, Any], pending: str | None = None) -> PayeePublic:
    standing = payee_standing(
        source=row["source"],
        effective_at=row["effective_at"],
        verified_at=row["verified_at"],
        cooling_off=p.config.payee_cooling_off,
        now=p.clock.now(),
    )
    return PayeePublic(
        **{k: v for k, v in row.items() if k in PayeePublic.model_fields},
        payable=standing.payable,
        held_until=standing.held_until,
        pending_approval_id=pending,
    )


@router.put("/{provider_id}", status_code=202)
async def propose_payee(
    provider_id: str, cmd: SetPayee, request: Request, rt: Runtime, principal: Proposer
) -> Any:
    """Propose new bank details (IBAN and BIC are checked); a second person approves."""
    fe = four_eyes_of(rt)
    async with rt.uow() as session:
        proposal = await payees.propose_change(
            payments_of(rt),
            fe,
            session,
            principal,
            provider_id,
            name=cmd.name,
            iban=cmd.iban,
            bic=cmd.bic,
            ctx=ctx_for(request, principal),
        )
    return JSONResponse(
        proposal.public(fe.clock()),
        status_code=202,
        headers={"Location": f"/v1/payments/approvals/{proposal.approval_id}"},
    )


@router.get("/{provider_id}", response_model=PayeePublic)
async def get_payee(provider_id: str, rt: Runtime, principal: Reader) -> PayeePublic:
    """Where the provider is paid, and whether payouts to it are held for now."""
    fe = four_eyes_of(rt)
    async with rt.sessions() as session:
        await payees.in_scope(session, principal, provider_id)
        row = await store.payee(session, provider_id)
        if row is None:
            raise payees.not_found(provider_id)
        pending = await fe.pending_for(session, payees.CHANGE, payees.payee_subject(provider_id))
    return payee_public(
        payments_of(rt), row, str(pending.approval_id) if pending is not None else None
    )


@router.post("/{provider_id}/verification", response_model=PayeePublic)
async def verify_payee(
    provider_id: str, cmd: VerifyPayee, request: Request, rt: Runtime, principal: Verifier
) -> PayeePublic:
    """Record the bank's verification-of-payee answer for the current details."""
    async with rt.uow() as session:
        row = await payees.verify(
            payments_of(rt),
            session,
            principal,
            provider_id,
            iban=cmd.iban,
            result=cmd.result,
            ctx=ctx_for(request, principal),
        )
    return payee_public(payments_of(rt), row)
