"""The HTTP face of the dead letters, the same in every service (role ``admin``):

- ``GET  /v1/{service}/dead-letters`` — open dead letters oldest first, with their error
  (``?status=replayed`` or ``?status=all`` for the others);
- ``GET  /v1/{service}/dead-letters/{id}`` — one, with the event it holds;
- ``POST /v1/{service}/dead-letters/{id}/replay`` — apply it again after a fix;
- ``POST /v1/{service}/dead-letters/replay`` — apply every open one again.
"""

# No ``from __future__ import annotations``: the routes' parameter types are aliases local
# to ``dead_letters_router`` (see :mod:`shared.approvals_api`).
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shared import dead_letters
from shared.auth import Principal, require
from shared.service import ServiceRuntime, runtime_of


class DeadLetterPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


class ReplayReport(BaseModel):
    applied: int
    failed: int
    items: list[dict[str, Any]]


def dead_letters_router(service: str) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{service}/dead-letters", tags=["operations"])
    Runtime = Annotated[ServiceRuntime, Depends(runtime_of(service))]
    Admin = Annotated[Principal, Depends(require("admin"))]

    @router.get("", response_model=DeadLetterPage)
    async def list_dead_letters(
        rt: Runtime,
        principal: Admin,
        status: Literal["open", "replayed", "all"] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        after: uuid.UUID | None = None,
    ) -> DeadLetterPage:
        """What the consumer gave up on, oldest first, with the error."""
        async with rt.sessions() as session:
            rows = await dead_letters.page(
                session,
                rt.name,
                status=None if status == "all" else status,
                after=after,
                limit=limit,
            )
        return DeadLetterPage(
            items=[d.public() for d in rows],
            next=str(rows[-1].dead_letter_id) if len(rows) == limit else None,
        )

    @router.post("/replay", response_model=ReplayReport)
    async def replay_all(rt: Runtime, principal: Admin) -> ReplayReport:
        """Apply every open dead letter again (each in its own transaction)."""
        results = await dead_letters.replay_all(rt.consumer, principal.actor)
        return ReplayReport(
            applied=sum(r.outcome == "applied" for r in results),
            failed=sum(r.outcome == "failed" for r in results),
            items=[r.public() for r in results],
        )

    @router.get("/{dead_letter_id}")
    async def get_dead_letter(dead_letter_id: uuid.UUID, rt: Runtime, principal: Admin) -> Any:
        async with rt.sessions() as session:
            dead = await dead_letters.get(session, rt.name, dead_letter_id)
        return dead.public(with_body=True)

    @router.post("/{dead_letter_id}/replay")
    async def replay_one(dead_letter_id: uuid.UUID, rt: Runtime, principal: Admin) -> Any:
        """Apply it again after a fix; ``outcome`` says whether it went through (409 once
        it was replayed)."""
        result = await dead_letters.replay(rt.consumer, dead_letter_id, principal.actor)
        return result.public()

    return router
