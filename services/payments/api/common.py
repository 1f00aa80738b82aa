"""What the payments endpoints share: the runtime, roles, who may see what, error mapping."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import store
from services.payments.domain import PaymentsError
from services.payments.handlers import Payments
from shared.auth import Principal, require
from shared.errors import NotFoundError
from shared.outbox import EventContext
from shared.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable
from shared.service import ServiceRuntime, runtime_of

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("payments"))]
Provider = Annotated[Principal, Depends(require("provider"))]
Learner = Annotated[Principal, Depends(require("learner"))]
Agency = Annotated[Principal, Depends(require("agency", "admin"))]
ProviderOrLearner = Annotated[Principal, Depends(require("provider", "learner"))]
EnrolmentReader = Annotated[
    Principal, Depends(require("provider", "learner", "agency", "auditor", "admin"))
]
ProviderReader = Annotated[Principal, Depends(require("provider", "agency", "auditor", "admin"))]
OVERSEERS = ("agency", "auditor", "admin")


class Page(BaseModel):
    next: str | None


def payments_of(rt: ServiceRuntime) -> Payments:
    payments: Payments = rt.state["payments"]
    return payments


def ctx_for(request: Request, principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


def problem(exc: PaymentsError) -> Problem:
    extra = {"code": exc.code}
    if exc.kind == "forbidden":
        return Forbidden(exc.detail, extra=extra)
    if exc.kind == "not_found":
        return NotFound(exc.detail, extra=extra)
    if exc.kind == "unprocessable":
        return Unprocessable(exc.detail, extra=extra)
    return Conflict(exc.detail, extra=extra)


def may_see(principal: Principal, row: dict[str, Any]) -> bool:
    """Overseers see everything; a provider its own; a learner their own enrolments."""
    if principal.role in OVERSEERS:
        return True
    if principal.role == "provider":
        return bool(row.get("provider_id") == principal.provider_id)
    if principal.role == "learner":
        return principal.account_id is not None and row.get("account_id") == principal.account_id
    return False


def visible(
    principal: Principal, row: dict[str, Any] | None, what: str, key: Any
) -> dict[str, Any]:
    # someone else's resource answers 404: its existence must not leak
    if row is None or not may_see(principal, row):
        raise NotFound(f"no {what} {key}")
    return row


def scope_filters(principal: Principal, **filters: Any) -> dict[str, Any]:
    """List filters narrowed to what the caller may see."""
    if principal.role == "provider":
        if filters.get("provider_id") not in (None, principal.provider_id):
            raise Forbidden("a provider sees only its own records")
        filters["provider_id"] = principal.provider_id
    elif principal.role == "learner":
        if filters.get("account_id") not in (None, principal.account_id):
            raise Forbidden("a learner sees only their own enrolments")
        filters["account_id"] = principal.account_id or uuid.UUID(int=0)
    return filters


# --- agency scope over enrolments, claims and holds ------------------------------------------

# national reads of enrolments and claims; an agency reads those of the accounts it manages
NATIONAL_READERS = ("finance", "auditor", "admin")
ScopedReader = Annotated[
    Principal,
    Depends(require("provider", "learner", "agency", "finance", "auditor", "admin")),
]


async def in_scope(session: AsyncSession, principal: Principal, row: dict[str, Any]) -> bool:
    """National roles see everything; an agency the rows of the accounts it manages (by the
    accounts read model); a provider its own; a learner their own."""
    if principal.role in NATIONAL_READERS:
        return True
    if principal.role == "agency":
        agency = await store.agency_of(session, row.get("account_id"))
        return agency is not None and agency == principal.agency_id
    if principal.role in ("provider", "learner"):
        return may_see(principal, row)
    return False


async def scoped(
    session: AsyncSession,
    principal: Principal,
    row: dict[str, Any] | None,
    what: str,
    key: Any,
) -> dict[str, Any]:
    """The row, when the caller may see it; otherwise the same 404 as for a missing one."""
    if row is None or not await in_scope(session, principal, row):
        raise NotFoundError(f"no {what} {key}", code=f"{what}_not_found")
    return row


def account_scope_filters(principal: Principal, **filters: Any) -> dict[str, Any]:
    """List filters of enrolments and claims narrowed to the caller's scope."""
    filters = scope_filters(principal, **filters)
    if principal.role == "agency":
        filters["managed_by"] = principal.agency_id or ""
    return filters
