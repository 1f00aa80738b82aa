"""What payments' routes and jobs share: the runtime and the components its setup built
(:class:`Components`, which also builds each use case's context), the roles each kind of
route admits, who may see what, and the event context of a request.

Scope: overseers (``agency``, ``auditor``, ``admin``) see every enrolment's existence; a
provider its own records, a learner their own; ``finance``, ``auditor`` and ``admin`` read
every enrolment and claim, an agency those on the accounts it manages, and the payouts of
the providers it registered. Anything outside the caller's scope answers 404, the same as
what does not exist, so an answer never tells whether someone else's record exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar, TypeVarTuple

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.config import PaymentsConfig
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.guidance import GuidancePlan
from services.payments.domain.payouts import Payout, PayoutRun
from services.payments.handlers import Context, Payments
from services.payments.handlers.group import ClaimCommitter, ConfirmCommitter
from services.payments.handlers.payees import not_found as payee_not_found
from services.payments.store import read_models, rows
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal, Role, require
from shared.clock import Clock
from shared.conditional import RowWatch, answer
from shared.errors import NotFoundError
from shared.outbox import EventContext
from shared.problems import Forbidden
from shared.service import ServiceRuntime, components_of, runtime_of


@dataclass(frozen=True)
class Components:
    """What payments' setup builds: the use cases' dependencies, the four-eyes
    proposals guarding money, and the group commits of claims and confirmations."""

    payments: Payments
    four_eyes: FourEyes
    claims: ClaimCommitter
    confirmations: ConfirmCommitter

    @property
    def config(self) -> PaymentsConfig:
        return self.payments.config

    @property
    def clock(self) -> Clock:
        return self.payments.clock

    def context(self, session: AsyncSession, events: EventContext) -> Context:
        """The context of one use case in ``session``'s transaction, happening now."""
        return self.payments.context(session, events)


def components(rt: ServiceRuntime) -> Components:
    return components_of(rt, Components)


# national reads of enrolments, claims, payouts and payees
NATIONAL: tuple[Role, ...] = ("finance", "auditor", "admin")

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("payments"))]
Provider = Annotated[Principal, Depends(require("provider"))]
Learner = Annotated[Principal, Depends(require("learner"))]
Agency = Annotated[Principal, Depends(require("agency", "admin"))]
ProviderOrLearner = Annotated[Principal, Depends(require("provider", "learner"))]
ScopedReader = Annotated[Principal, Depends(require("provider", "learner", "agency", *NATIONAL))]
RunProposer = Annotated[Principal, Depends(require("agency", "admin"))]
RunReader = Annotated[Principal, Depends(require("agency", *NATIONAL))]
PayoutReader = Annotated[Principal, Depends(require("provider", "agency", *NATIONAL))]
Finance = Annotated[Principal, Depends(require("finance"))]
# resolves what the ledger refused (retry or abandon an enrolment or a claim)
Operator = Annotated[Principal, Depends(require("admin", "finance"))]
PayeeProposer = Annotated[Principal, Depends(require("provider", "agency"))]
PayeeReader = Annotated[Principal, Depends(require("provider", "agency", *NATIONAL))]


def shown(row: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of a stored row (a dataclass) that its public ``model`` shows, read as
    they are: ``dataclasses.asdict`` would deep-copy each row first, which a profile of the
    listing routes shows."""
    return {
        name: getattr(row, name) for name in model.model_fields if name in row.__dataclass_fields__
    }


class Page(BaseModel):
    next: str | None


def ctx_for(principal: Principal) -> EventContext:
    """The event context of a request: its correlation id and the caller."""
    return EventContext.for_request(principal.actor)


# --- enrolments and claims: the accounts an agency manages --------------------------------


def _own(principal: Principal, row: Enrolment | Claim | GuidancePlan) -> bool:
    """A provider its own; a learner their own."""
    if principal.role == "provider":
        return row.provider_id == principal.provider_id
    if principal.role == "learner":
        return principal.account_id is not None and row.account_id == principal.account_id
    return False


async def in_scope(
    session: AsyncSession, principal: Principal, row: Enrolment | Claim | GuidancePlan
) -> bool:
    """National roles see everything; an agency the rows of the accounts it manages (by the
    accounts read model); a provider its own; a learner their own."""
    if principal.role in NATIONAL:
        return True
    if principal.role == "agency":
        agency = await read_models.agency_of(session, row.account_id)
        return agency is not None and agency == principal.agency_id
    return _own(principal, row)


Scoped = TypeVar("Scoped", Enrolment, Claim, GuidancePlan)
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


async def scoped(
    session: AsyncSession, principal: Principal, row: Scoped | None, what: str, key: Any
) -> Scoped:
    """The row, when the caller may see it; otherwise the same 404 as for a missing one."""
    if row is None or not await in_scope(session, principal, row):
        raise NotFoundError(f"no {what} {key}", code=f"{what}_not_found")
    return row


async def load_scoped(
    session: AsyncSession,
    principal: Principal,
    kind: type[Scoped],
    key: uuid.UUID,
    *,
    lock: bool = False,
) -> Scoped:
    """The enrolment or claim with this key (``lock``: held until the transaction ends), when
    the caller may see it; otherwise the 404 of a missing one (``<kind>_not_found``)."""
    row = await rows.get(session, kind, key, lock=lock)
    return await scoped(session, principal, row, kind.__name__.lower(), key)


def watch(rt: ServiceRuntime, kind: type[Scoped]) -> RowWatch:
    """The watch of ``kind``'s rows that the process's waiting reads share."""
    table, key = rows.TABLES[kind]
    found = rt.state.get(f"watch:{table}")
    if not isinstance(found, RowWatch):
        found = rt.state[f"watch:{table}"] = RowWatch(rt.reads, f"payments.{table}", key)
    return found


async def read_scoped(
    request: Request,
    rt: ServiceRuntime,
    principal: Principal,
    kind: type[Scoped],
    key: uuid.UUID,
    shown_as: Callable[[Scoped], BaseModel],
) -> Response:
    """The enrolment or claim as ``shown_as`` shows it, as a conditional read that may wait
    for a change (:func:`shared.conditional.answer`): what the saga's followers poll."""

    async def read(session: AsyncSession) -> bytes:
        found = await load_scoped(session, principal, kind, key)
        return shown_as(found).model_dump_json().encode()

    return await answer(request, read, watch(rt, kind), key)


# the conditional reads' answers beside their 200 (OpenAPI)
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: the entity tag in If-None-Match is still current "
        "(after waiting up to the seconds of Prefer: wait=<n>, at most 20, for a change)"
    }
}


def context(rt: ServiceRuntime, session: AsyncSession, principal: Principal) -> Context:
    """The context of a use case the caller's request runs in ``session``'s transaction."""
    return components(rt).context(session, ctx_for(principal))


async def decide(
    rt: ServiceRuntime, principal: Principal, step: Callable[[Context], Awaitable[R]]
) -> R:
    """``step`` in one transaction, with the context of the caller's request."""
    async with rt.uow() as session:
        return await step(context(rt, session, principal))


async def decide_on(
    rt: ServiceRuntime,
    principal: Principal,
    kind: type[Scoped],
    key: uuid.UUID,
    step: Callable[[Scoped, *Ts, Context], Awaitable[R]],
    *args: *Ts,
    session: AsyncSession | None = None,
) -> R:
    """``step(row, *args, ctx)`` on the enrolment or claim the caller may see, locked: in
    ``session``'s transaction, else in one of its own."""
    if session is None:
        async with rt.uow() as own:
            return await decide_on(rt, principal, kind, key, step, *args, session=own)
    row = await load_scoped(session, principal, kind, key, lock=True)
    return await step(row, *args, context(rt, session, principal))


def proposed(proposal: Proposal, now: datetime) -> JSONResponse:
    """The 202 answer to a proposal that waits for finance's approval."""
    return JSONResponse(
        proposal.public(now),
        status_code=202,
        headers={"Location": f"/v1/payments/approvals/{proposal.approval_id}"},
    )


def account_scope_filters(principal: Principal, **filters: Any) -> dict[str, Any]:
    """List filters of enrolments and claims narrowed to the caller's scope."""
    if principal.role == "provider":
        if filters.get("provider_id") not in (None, principal.provider_id):
            raise Forbidden("a provider sees only its own records")
        filters["provider_id"] = principal.provider_id
    elif principal.role == "learner":
        if filters.get("account_id") not in (None, principal.account_id):
            raise Forbidden("a learner sees only their own enrolments")
        filters["account_id"] = principal.account_id or uuid.UUID(int=0)
    elif principal.role == "agency":
        filters["managed_by"] = principal.agency_id or ""
    return filters


async def scoped_page(
    rt: ServiceRuntime,
    principal: Principal,
    kind: type[Scoped],
    *,
    order: str,
    limit: int,
    after: uuid.UUID | None,
    **filters: Any,
) -> tuple[list[Scoped], str | None]:
    """A page of enrolments or claims, newest first, narrowed to the caller's scope; and
    the cursor of the next page."""
    scoped_filters = account_scope_filters(principal, **filters)
    async with rt.reads() as session:
        page = await rows.page(session, kind, scoped_filters, order=order, limit=limit, after=after)
    _, key = rows.TABLES[kind]
    return page, (str(getattr(page[-1], key)) if len(page) == limit else None)


# --- payouts and payees: the providers an agency registered --------------------------------


def sees_payout(principal: Principal, payout: Payout) -> bool:
    if principal.role in NATIONAL:
        return True
    if principal.role == "provider":
        return payout.provider_id == principal.provider_id
    if principal.role == "agency":
        return payout.agency_id is not None and payout.agency_id == principal.agency_id
    return False


def sees_run(principal: Principal, run: PayoutRun) -> bool:
    if principal.role in NATIONAL:
        return True
    return principal.role == "agency" and run.agency_id == principal.agency_id


def run_scope(principal: Principal) -> str | None:
    """The agency whose runs (and providers' claims) the caller works with; ``None``:
    national."""
    return principal.agency_id if principal.role == "agency" else None


async def payee_scope(
    session: AsyncSession, principal: Principal, provider_id: str, *, act: bool = False
) -> str | None:
    """The registering agency of a provider the caller may see (``act``: may propose for),
    else the 404 of a provider that does not exist."""
    known, agency_id = await read_models.provider_agency(session, provider_id)
    if known:
        if principal.role == "provider" and principal.provider_id == provider_id:
            return agency_id
        if principal.role == "agency" and agency_id and agency_id == principal.agency_id:
            return agency_id
        if principal.role in NATIONAL and not act:
            return agency_id
    raise payee_not_found(provider_id)
