"""What every catalogue endpoint shares: the runtime, the clock, error mapping, scope.

Scope: an agency acts on the providers it registered and on the credentials of the accounts
it manages; ``qa`` (the national quality-assurance authority) acts on every provider and
credential; a provider on its own; national roles read nationally. A refusal for someone
else's resource is the same 404 as for a missing one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from services.catalogue.domain.errors import CatalogueError
from services.catalogue.handlers import CatalogueConfig
from shared.auth import Principal
from shared.outbox import EventContext
from shared.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable
from shared.service import ServiceRuntime, runtime_of

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("catalogue"))]


def config_of(rt: ServiceRuntime) -> CatalogueConfig:
    config: CatalogueConfig = rt.state["config"]
    return config


def now() -> datetime:
    return datetime.now(UTC)


def ctx_for(request: Request, principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


NATIONAL_READERS = frozenset({"qa", "auditor", "admin"})


def manages_provider(principal: Principal, agency_id: str) -> bool:
    """May ``principal`` take quality-assurance decisions on a provider registered by
    ``agency_id``: that agency, or the national quality-assurance authority."""
    if principal.role == "qa":
        return True
    return principal.role == "agency" and principal.agency_id == agency_id


def reads_provider(principal: Principal, provider_id: uuid.UUID, agency_id: str) -> bool:
    """May ``principal`` read the provider's record (its payout details included)."""
    if principal.role in NATIONAL_READERS:
        return True
    if principal.role == "provider":
        return principal.provider_id == str(provider_id)
    return manages_provider(principal, agency_id)


def provider_uuid(principal: Principal) -> uuid.UUID:
    """The provider a provider token speaks for."""
    try:
        return uuid.UUID(principal.provider_id or "")
    except ValueError as exc:
        raise Forbidden("the token's provider_id is not a registered provider") from exc


def domain_problem(exc: CatalogueError) -> Problem:
    extra: dict[str, object] = {"code": exc.code}
    if exc.field:
        extra["errors"] = [{"field": exc.field, "message": exc.detail, "type": exc.code}]
    if exc.kind == "forbidden":
        return Forbidden(exc.detail, extra=extra)
    if exc.kind == "not_found":
        return NotFound(exc.detail, extra=extra)
    if exc.kind == "unprocessable":
        return Unprocessable(exc.detail, extra=extra)
    return Conflict(exc.detail, extra=extra)
