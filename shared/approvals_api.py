"""The HTTP face of four eyes, the same in every service that guards money:

- ``GET  <prefix>/approvals`` — proposals (``?status=pending`` is the approvers' queue);
- ``GET  <prefix>/approvals/{id}`` — one proposal with its summary and, once approved, result;
- ``POST <prefix>/approvals/{id}/approve`` — a second person approves: the action is done;
- ``POST <prefix>/approvals/{id}/refuse`` — a second person refuses, with a reason code.

Approvers (``finance``), admins and auditors see every proposal; an agency sees those made in
its scope; a provider those about itself. Anything else answers 404, the same as a proposal
that does not exist.
"""

# No ``from __future__ import annotations`` here: the routes' parameter types are aliases
# local to ``approvals_router``, which FastAPI could not resolve from strings (it would take
# ``rt`` and ``principal`` for query parameters).
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.approvals import FourEyes, Proposal, Status
from shared.auth import Principal, Role, require
from shared.errors import NotFoundError
from shared.outbox import EventContext
from shared.service import ServiceRuntime, runtime_of

NATIONAL = ("finance", "admin", "auditor")


class Refusal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason_code: str = Field(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")


class ApprovalPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


def may_see(principal: Principal, proposal: Proposal) -> bool:
    if principal.role in NATIONAL:
        return True
    if principal.role == "agency":
        return proposal.agency_id is not None and proposal.agency_id == principal.agency_id
    if principal.role == "provider":
        return proposal.provider_id is not None and proposal.provider_id == principal.provider_id
    return False


def four_eyes_of(rt: ServiceRuntime) -> FourEyes:
    if rt.four_eyes is None:
        raise RuntimeError(f"service {rt.name} has no four-eyes approvals")
    return rt.four_eyes


async def decide(
    rt: ServiceRuntime,
    approval_id: uuid.UUID,
    principal: Principal,
    *,
    approve: bool,
    reason_code: str | None = None,
) -> dict[str, Any]:
    """The second person's decision, in one transaction; the proposal as it now stands."""
    fe = four_eyes_of(rt)
    async with rt.uow() as session:
        decided = await fe.decide(
            session,
            approval_id,
            principal,
            EventContext.for_request(principal.actor),
            approve=approve,
            reason_code=reason_code,
        )
    return decided.public(fe.clock())


def approvals_router(
    service: str, prefix: str, approvers: tuple[Role, ...] = ("finance",)
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["approvals"])
    Runtime = Annotated[ServiceRuntime, Depends(runtime_of(service))]
    Reader = Annotated[
        Principal, Depends(require("finance", "admin", "auditor", "agency", "provider"))
    ]
    Approver = Annotated[Principal, Depends(require(*approvers))]

    @router.get("/approvals", response_model=ApprovalPage)
    async def list_approvals(
        rt: Runtime,
        principal: Reader,
        status: Status | None = None,
        action: Annotated[str | None, Query(max_length=60)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        after: uuid.UUID | None = None,
    ) -> ApprovalPage:
        """Proposals oldest first; ``?status=pending`` is what waits for an approver."""
        fe = four_eyes_of(rt)
        scope: dict[str, Any] = {}
        if principal.role == "agency":
            scope["agency_id"] = principal.agency_id
        elif principal.role == "provider":
            scope["provider_id"] = principal.provider_id
        async with rt.sessions() as session:
            rows = await fe.page(
                session, status=status, action=action, limit=limit, after=after, **scope
            )
        now = fe.clock()
        return ApprovalPage(
            items=[p.public(now) for p in rows],
            next=str(rows[-1].approval_id) if len(rows) == limit else None,
        )

    @router.get("/approvals/{approval_id}")
    async def get_approval(approval_id: uuid.UUID, rt: Runtime, principal: Reader) -> Any:
        fe = four_eyes_of(rt)
        async with rt.sessions() as session:
            proposal = await fe.get(session, approval_id)
        if proposal is None or not may_see(principal, proposal):
            raise NotFoundError(f"no proposal {approval_id}", code="proposal_not_found")
        return proposal.public(fe.clock())

    @router.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: uuid.UUID, rt: Runtime, principal: Approver) -> Any:
        """Approve as the second person: the proposed action is carried out now."""
        return await decide(rt, approval_id, principal, approve=True)

    @router.post("/approvals/{approval_id}/refuse")
    async def refuse(
        approval_id: uuid.UUID, body: Refusal, rt: Runtime, principal: Approver
    ) -> Any:
        """Refuse as the second person, with a reason code (no free text)."""
        return await decide(rt, approval_id, principal, approve=False, reason_code=body.reason_code)

    return router
