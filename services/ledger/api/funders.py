"""Funders, their yearly budgets and the top-ups they grant from them.

- ``POST /v1/ledger/funders`` (admin): 201, a new funder (``employer``, ``region``,
  ``sector_fund`` or ``state``) and its ``funder_id``, which its ``funder`` tokens carry;
- ``GET /v1/ledger/funders/{id}`` (the funder itself, admin, finance, auditor): the funder
  and its budgets (what each year may grant, what was drawn, what is left);
- ``PUT /v1/ledger/funders/{id}/budgets/{year}`` (admin): 202, a ``budget`` proposal
  (``budget:<funder>:<year>``, the year's budget in total); in force once ``finance``
  approves it;
- ``POST /v1/ledger/funders/{id}/grants`` (the funder itself, admin; ``Idempotency-Key``
  required): 201, a top-up lot, earmarked if asked, drawn from the funder's budget of the
  year in the same transaction; 409 ``budget_exceeded`` past what is left (or
  ``no_budget``), and nothing changes.

A funder outside the caller's scope answers 404 ``funder_not_found``, as one that does not
exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.api.credit import DECIDE, TopUpReasonCode, grant_reply, proposed
from services.ledger.commands import GrantCredits
from services.ledger.deps import (
    Admin,
    Components,
    FunderOrAdmin,
    FunderOrNational,
    Runtime,
    ctx_for,
    idempotent,
)
from services.ledger.handlers import funders
from services.ledger.handlers.wallets import Outcome
from services.ledger.store import funders as funder_store
from shared.events.budgets import FUNDER_ID_PATTERN
from shared.events.ledger import Earmark, UtcDatetime
from shared.idempotency import Reply, claim_for
from shared.links import follow

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger
# the path parameter of every funder route (here, co-funding rules, statements)
FunderId = Annotated[str, Path(min_length=1, max_length=100, pattern=FUNDER_ID_PATTERN)]
Year = Annotated[int, Path(ge=2000, le=2200)]


class FunderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # a well-known id the deployment configures (the training leave fund, the state's id in
    # the policy); otherwise the ledger chooses one
    funder_id: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=FUNDER_ID_PATTERN
    )
    kind: funders.FunderKind
    name: str = Field(min_length=1, max_length=200)
    employer_id: str | None = Field(default=None, min_length=1, max_length=100)
    region: str | None = Field(default=None, min_length=1, max_length=100)


@router.post(
    "/funders",
    status_code=201,
    responses=follow(
        201, "GET /v1/ledger/funders/{funder_id}", funder_id="$response.body#/funder_id"
    ),
)
async def create_funder(
    body: FunderCreate, request: Request, rt: Runtime, parts: Components, principal: Admin
) -> Response:
    """Register a funder; the answer names its ``funder_id`` (its tokens carry it)."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = parts.ledger.context(session, ctx_for(principal))
        funder_id = await funders.register_funder(
            funder_id=body.funder_id,
            kind=body.kind,
            name=body.name,
            employer_id=body.employer_id,
            region=body.region,
            principal=principal,
            ctx=ctx,
        )
        return (
            201,
            {**body.model_dump(), "funder_id": funder_id},
            {"Location": f"/v1/ledger/funders/{funder_id}"},
        )

    return await idempotent(rt, request, principal, body, effect)


@router.get("/funders/{funder_id}")
async def get_funder(
    funder_id: FunderId, rt: Runtime, principal: FunderOrNational
) -> dict[str, Any]:
    """The funder and its budgets by year (``amount``, ``drawn``, ``left``)."""
    async with rt.sessions() as session:
        found = await funders.funder_in_scope(session, principal, funder_id)
        budgets = await funder_store.budgets_of(session, funder_id)
    return {
        **{k: v for k, v in found.items() if k != "created_at"},
        "created_at": found["created_at"].isoformat(),
        "budgets": [{k: v for k, v in b.items() if k != "updated_at"} for b in budgets],
    }


class BudgetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(
        ge=0, le=100_000_000_000, description="what the funder may grant in the year, in total"
    )


@router.put(
    "/funders/{funder_id}/budgets/{year}",
    status_code=202,
    responses=follow(202, *DECIDE),
)
async def put_budget(
    funder_id: FunderId,
    year: Year,
    body: BudgetRequest,
    request: Request,
    rt: Runtime,
    parts: Components,
    principal: Admin,
) -> Response:
    """Propose the funder's budget of ``year`` (in total, never below what it already
    granted from it: 409 ``budget_below_drawn``); in force once ``finance`` approves."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = parts.ledger.context(session, ctx_for(principal))
        proposal = await funders.propose_budget(
            funder_id, year, body.amount, principal, parts.four_eyes, ctx
        )
        return proposed(proposal, parts.clock.now())

    return await idempotent(rt, request, principal, body, effect)


class FunderGrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=100_000_000, description="minor units")
    year: StrictInt | None = Field(
        default=None, ge=2000, le=2200, description="the budget drawn on (default: this year)"
    )
    reason_code: TopUpReasonCode = "funder_programme"
    note: str | None = Field(
        default=None,
        max_length=500,
        description="Free text for the caller's own records: checked, never stored",
    )
    expires_at: UtcDatetime | None = None
    earmark: Earmark | None = None


@router.post(
    "/funders/{funder_id}/grants",
    status_code=201,
    responses=follow(
        201, "GET /v1/ledger/funders/{funder_id}", funder_id="$request.path.funder_id"
    ),
)
async def grant_from_budget(
    funder_id: FunderId,
    body: FunderGrantRequest,
    request: Request,
    rt: Runtime,
    parts: Components,
    principal: FunderOrAdmin,
) -> Response:
    """A top-up lot from the funder's budget of ``year`` (default: the current year),
    earmarked or not; ``Idempotency-Key`` required (428 without). Past what is left of the
    budget: 409 ``budget_exceeded`` (no budget: 409 ``no_budget``), and nothing changes."""
    claim = claim_for(request, principal, body, required=True)
    lot_id = uuid.uuid4()
    year = body.year or parts.clock.now().year

    async def check(session: AsyncSession) -> None:
        await funders.funder_in_scope(session, principal, funder_id)

    def respond(outcome: Outcome) -> Reply:
        return grant_reply(
            outcome, lot_id, body.account_id, body.amount, funder_id=funder_id, year=year
        )

    reply = await parts.committer.submit(
        GrantCredits(
            account_id=body.account_id,
            lot_id=lot_id,
            amount=body.amount,
            funder_id=funder_id,
            reason_code=body.reason_code,
            kind="top_up",
            year=year,
            expires_at=body.expires_at,
            earmark=body.earmark,
            from_budget=True,
        ),
        ctx_for(principal),
        claim=claim,
        check=check,
        respond=respond,
    )
    return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
