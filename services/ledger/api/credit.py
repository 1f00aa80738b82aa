"""Creating and undoing credit.

``POST /v1/ledger/grants`` (agency, admin; ``Idempotency-Key`` required, 428 without): a
top-up lot, appended at once; an agency grants only to the accounts it manages (others
answer 404).

The rest create credit in bulk or undo entries, so each one only proposes; a second person
(``finance``) approves through ``/v1/ledger/approvals``:

- ``PUT /v1/ledger/policies/{year}`` (admin): 202, a ``policy`` proposal (``policy:<year>``);
- ``GET /v1/ledger/policies/{year}`` (admin, finance, auditor, agency): the approved policy,
  404 ``no_approved_policy`` when none;
- ``POST /v1/ledger/allocations`` (admin, agency): 202, an ``allocation`` proposal
  (``allocation:<year>``);
- ``GET /v1/ledger/allocations/{id}`` (admin, finance, auditor; an agency the runs it
  proposed): the run, and why it failed;
- ``POST /v1/ledger/accounts/{id}/reversals`` (admin, ``Idempotency-Key`` required): 202, a
  ``reversal`` proposal.

Every 202 carries the proposal and ``Location: /v1/ledger/approvals/{approval_id}``; the
proposal's ``result`` (once approved) names what was done (the ``allocation_id``, ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import CaptureTarget, GrantCredits, GrantTarget, ReverseEntry
from services.ledger.deps import (
    Admin,
    AgencyOrAdmin,
    AgencyOrNational,
    Components,
    Runtime,
    authorize_account,
    ctx_for,
    idempotent,
    outside_scope,
)
from services.ledger.domain import EntitlementPolicy, PolicyTerms
from services.ledger.handlers import proposals
from services.ledger.handlers.group import GroupedCheck
from services.ledger.handlers.wallets import Outcome
from services.ledger.store import funders as funder_store
from services.ledger.store import runs
from shared.approvals import Proposal
from shared.auth import Principal
from shared.errors import ConflictError, DomainError, InvalidError, NotFoundError
from shared.events.ledger import Earmark, ReversalReasonCode, UtcDatetime
from shared.idempotency import Reply, claim_for
from shared.links import decisions, follow

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger
DECIDE = decisions("/v1/ledger/approvals")
TopUpReasonCode = Literal["top_up", "correction", "funder_programme", "other"]
"""The grant reason codes a funder may give (``statutory`` is the allocation's own)."""
Year = Annotated[int, Path(ge=2000, le=2200)]


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=100_000_000, description="minor units")
    funder_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    reason_code: TopUpReasonCode = Field(
        description="Why the lot is granted; the ledger stream keeps this code, no free text"
    )
    note: str | None = Field(
        default=None,
        max_length=500,
        description="Free text for the caller's own records: checked, never stored (the "
        "ledger keeps no free text: nothing an erasure could not reach)",
    )
    expires_at: UtcDatetime | None = None
    earmark: Earmark | None = None


def grant_reply(
    outcome: Outcome, lot_id: uuid.UUID, account_id: uuid.UUID, amount: int, **more: Any
) -> Reply:
    """The answer to a granted lot (``more``: what the route adds, e.g. the funder's id);
    a wallet that appended nothing refused it."""
    if not outcome.events:
        raise ConflictError("the wallet refused the grant", code="grant_refused")
    payload = {
        "lot_id": str(lot_id),
        "account_id": str(account_id),
        **more,
        "amount": amount,
        "version": outcome.state.version,
    }
    return Reply(201, payload, {})


@router.post(
    "/grants",
    status_code=201,
    responses=follow(
        201,
        *(f"GET /v1/ledger/accounts/{{account_id}}/{view}" for view in ("balance", "entries")),
        "POST /v1/ledger/accounts/{account_id}/reversals",
    ),
)
async def grant(
    body: GrantRequest, request: Request, rt: Runtime, parts: Components, principal: AgencyOrAdmin
) -> Response:
    """A top-up lot from a funder, earmarked or not; ``Idempotency-Key`` required (428
    without). An agency grants only to the accounts it manages (others answer 404)."""

    # decided with the grants that arrive together (group commit), its key stored in the
    # same transaction
    claim = claim_for(request, principal, body, required=True)
    lot_id = uuid.uuid4()

    def respond(outcome: Outcome) -> Reply:
        return grant_reply(outcome, lot_id, body.account_id, body.amount)

    reply = await parts.committer.submit(
        GrantCredits(
            account_id=body.account_id,
            lot_id=lot_id,
            amount=body.amount,
            funder_id=body.funder_id,
            reason_code=body.reason_code,
            kind="top_up",
            expires_at=body.expires_at,
            earmark=body.earmark,
        ),
        ctx_for(principal),
        claim=claim,
        check=GrantCheck(principal, body.account_id, body.funder_id),
        respond=respond,
    )
    return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)


@dataclass(frozen=True)
class GrantCheck(GroupedCheck):
    """A top-up's account is the caller's to credit (else 404, as if it did not exist), and
    its funder is not a registered one (whose top-ups are drawn from its budget); the grants
    of a batch are checked together, two queries in all."""

    principal: Principal
    account_id: uuid.UUID
    funder_id: str

    @classmethod
    async def run_all(
        cls, session: AsyncSession, checks: Sequence[GroupedCheck]
    ) -> list[DomainError | None]:
        grants = [c for c in checks if isinstance(c, GrantCheck)]
        hidden = await outside_scope(session, [(c.principal, c.account_id) for c in grants])
        funders = await funder_store.registered(session, sorted({c.funder_id for c in grants}))
        return [
            refusal or (_budget_funder(c.funder_id) if c.funder_id in funders else None)
            for c, refusal in zip(grants, hidden, strict=True)
        ]


def _budget_funder(funder_id: str) -> InvalidError:
    return InvalidError(
        f"{funder_id} is a registered funder: its top-ups are drawn from its "
        f"budget (POST /v1/ledger/funders/{funder_id}/grants)",
        code="funder_grants_from_budget",
        field="funder_id",
    )


def proposed(proposal: Proposal, now: datetime) -> tuple[int, Any, dict[str, str]]:
    return (
        202,
        proposal.public(now),
        {"Location": f"/v1/ledger/approvals/{proposal.approval_id}"},
    )


def accepted(proposal: Proposal, now: datetime) -> JSONResponse:
    status, body, headers = proposed(proposal, now)
    return JSONResponse(body, status_code=status, headers=headers)


class PolicyPublic(EntitlementPolicy):
    proposed_by: str | None
    approved_by: str | None
    approval_id: uuid.UUID | None
    approved_at: datetime


@router.put(
    "/policies/{year}",
    status_code=202,
    responses=follow(202, "GET /v1/ledger/policies/{year}", *DECIDE, year="$request.path.year"),
)
async def put_policy(
    year: Year, body: PolicyTerms, rt: Runtime, parts: Components, principal: Admin
) -> Response:
    """Propose the entitlement policy of ``year`` (amounts in minor units, each at most
    1,000,000.00, i.e. 100,000,000 minor units). It is in force once ``finance`` approves the
    proposal; until then the year has no policy and no allocation can run for it."""
    async with rt.uow() as session:
        ctx = parts.ledger.context(session, ctx_for(principal))
        proposal = await proposals.propose_policy(year, body, principal, parts.four_eyes, ctx)
    return accepted(proposal, parts.clock.now())


@router.get("/policies/{year}", response_model=PolicyPublic)
async def get_policy(
    year: Year, rt: Runtime, parts: Components, principal: AgencyOrNational
) -> PolicyPublic:
    """The approved policy of a year, with who proposed and who approved it; 404 when no
    policy was approved for the year (there are no implicit defaults)."""
    async with rt.sessions() as session:
        stored = await runs.approved_policy(session, year)
        fe = parts.four_eyes
        pending = None if stored else await fe.pending_for(session, "policy", f"policy:{year}")
    if stored is None:
        raise NotFoundError(
            f"no approved entitlement policy for {year}",
            code="no_approved_policy",
            extra={"pending_approval_id": str(pending.approval_id)} if pending else None,
        )
    return PolicyPublic(
        **{**stored["policy"], "year": year},
        proposed_by=stored["proposed_by"],
        approved_by=stored["approved_by"],
        approval_id=stored["approval_id"],
        approved_at=stored["updated_at"],
    )


class AllocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: StrictInt = Field(ge=2000, le=2200)


class AllocationPublic(BaseModel):
    allocation_id: uuid.UUID
    year: int
    status: Literal["running", "finished", "failed"]
    requested_by: str
    approved_by: str | None
    approval_id: uuid.UUID | None
    policy: dict[str, Any] | None
    total_accounts: int
    processed: int
    granted_count: int
    granted_amount: int
    skipped: int
    progress: float
    failure_code: str | None
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def allocation_public(run: dict[str, Any]) -> AllocationPublic:
    total = run["total_accounts"]
    # a ratio for display only; no money is ever a float
    progress = 1.0 if run["status"] == "finished" else (run["processed"] / total if total else 0.0)
    return AllocationPublic(
        progress=round(min(progress, 1.0), 4),
        **{k: v for k, v in run.items() if k in AllocationPublic.model_fields},
    )


@router.post("/allocations", status_code=202, responses=follow(202, *DECIDE))
async def start_allocation(
    body: AllocationRequest,
    request: Request,
    rt: Runtime,
    parts: Components,
    principal: AgencyOrAdmin,
) -> Response:
    """Propose the yearly allocation of ``year``: only the current or the next year (else
    422 ``allocation_year_not_open``), only with an approved policy (else 409
    ``no_approved_policy``). Once ``finance`` approves, the run starts; the approval's
    ``result.allocation_id`` names it. An agency may propose it (it is national); it then
    sees the proposal and the run."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = parts.ledger.context(session, ctx_for(principal))
        proposal = await proposals.propose_allocation(body.year, principal, parts.four_eyes, ctx)
        return proposed(proposal, parts.clock.now())

    return await idempotent(rt, request, principal, body, effect)


@router.get("/allocations/{allocation_id}", response_model=AllocationPublic)
async def get_allocation(
    allocation_id: uuid.UUID, rt: Runtime, principal: AgencyOrNational
) -> AllocationPublic:
    """An allocation run: progress, and ``failure_code``/``error`` when it ended ``failed``.
    An agency sees the runs it proposed."""
    async with rt.sessions() as session:
        run = await runs.get_allocation(session, allocation_id)
    if run is None or (principal.role == "agency" and run["agency_id"] != principal.agency_id):
        raise NotFoundError(f"no allocation {allocation_id}", code="allocation_not_found")
    return allocation_public(run)


class ReversalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: GrantTarget | CaptureTarget = Field(discriminator="kind")
    reason_code: ReversalReasonCode = Field(
        description="Why; the ``EntryReversed`` the stream keeps forever carries this code"
    )
    note: str | None = Field(
        default=None,
        max_length=500,
        description="Free text for the caller's own records: checked, never stored (the "
        "ledger keeps no free text: nothing an erasure could not reach)",
    )


@router.post("/accounts/{account_id}/reversals", status_code=202, responses=follow(202, *DECIDE))
async def reverse(
    account_id: uuid.UUID,
    body: ReversalRequest,
    request: Request,
    rt: Runtime,
    parts: Components,
    principal: Admin,
) -> Response:
    """Propose to compensate a grant or a capture (the original entry stays on record);
    ``Idempotency-Key`` required. Refused at once (404/409) when it could never be done;
    appended once ``finance`` approves."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        await authorize_account(session, principal, account_id)
        command = ReverseEntry(
            account_id=account_id,
            target=body.target,
            reason_code=body.reason_code,
            actor=parts.ledger.outbox.actor(principal.actor),  # as the stream will name them
        )
        ctx = parts.ledger.context(session, ctx_for(principal))
        proposal = await proposals.propose_reversal(command, principal, parts.four_eyes, ctx)
        return proposed(proposal, parts.clock.now())

    return await idempotent(rt, request, principal, body, effect, required=True)
