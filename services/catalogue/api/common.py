"""What every catalogue endpoint shares: the runtime, the clock, error mapping."""

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
