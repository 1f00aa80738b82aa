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
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.payments.commands import SetPayee, VerifyPayee
from services.payments.deps import (
    Components,
    Finance,
    PayeeProposer,
    PayeeReader,
    Runtime,
    components,
    ctx_for,
    payee_scope,
    proposed,
    shown,
)
from services.payments.domain.payees import Payee, payee_standing
from services.payments.handlers import payees
from services.payments.store import payees as store
from shared.links import decisions, follow

router = APIRouter(prefix="/v1/payees", tags=["payees"])


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


def payee_public(c: Components, payee: Payee, pending: str | None = None) -> PayeePublic:
    standing = payee_standing(
        source=payee.source,
        effective_at=payee.effective_at,
        verified_at=payee.verified_at,
        cooling_off=c.config.payee_cooling_off,
        now=c.clock.now(),
    )
    return PayeePublic(
        **shown(payee, PayeePublic),
        payable=standing.payable,
        held_until=standing.held_until,
        pending_approval_id=pending,
    )


@router.put(
    "/{provider_id}",
    status_code=202,
    responses=follow(
        202,
        "GET /v1/payees/{provider_id}",
        "POST /v1/payees/{provider_id}/verification",
        *decisions("/v1/payments/approvals"),
        provider_id="$request.path.provider_id",
    ),
)
async def propose_payee(
    provider_id: str, cmd: SetPayee, rt: Runtime, principal: PayeeProposer
) -> Any:
    """Propose new bank details (IBAN and BIC are checked); a second person approves."""
    c = components(rt)
    async with rt.uow() as session:
        agency_id = await payee_scope(session, principal, provider_id, act=True)
        ctx = c.context(session, ctx_for(principal))
        proposal = await payees.propose_change(
            provider_id, cmd, principal, c.four_eyes, ctx, agency_id=agency_id
        )
    return proposed(proposal, c.four_eyes.clock())


@router.get("/{provider_id}", response_model=PayeePublic)
async def get_payee(provider_id: str, rt: Runtime, principal: PayeeReader) -> PayeePublic:
    """Where the provider is paid, and whether payouts to it are held for now."""
    c = components(rt)
    async with rt.sessions() as session:
        await payee_scope(session, principal, provider_id)
        payee = await store.payee(session, provider_id)
        if payee is None:
            raise payees.not_found(provider_id)
        pending = await c.four_eyes.pending_for(
            session, payees.CHANGE, payees.payee_subject(provider_id)
        )
    return payee_public(c, payee, str(pending.approval_id) if pending is not None else None)


@router.post("/{provider_id}/verification", response_model=PayeePublic)
async def verify_payee(
    provider_id: str, cmd: VerifyPayee, rt: Runtime, principal: Finance
) -> PayeePublic:
    """Record the bank's verification-of-payee answer for the current details."""
    c = components(rt)
    async with rt.uow() as session:
        payee = await payees.verify(provider_id, cmd, c.context(session, ctx_for(principal)))
    return payee_public(c, payee)
