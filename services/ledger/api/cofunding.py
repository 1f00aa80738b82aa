"""Funders' co-funding rules.

- ``POST /v1/ledger/funders/{id}/cofunding-rules`` (the funder itself, admin): 202, a
  ``cofunding`` proposal (``cofunding:<funder>:<rule>``, the answer names its ``rule_id``);
  the rule is in force once ``finance`` approves it;
- ``GET /v1/ledger/funders/{id}/cofunding-rules`` (the funder itself, admin, finance,
  auditor): the rules in force, in the order they came into force.

What a rule does at each reservation is :mod:`services.ledger.domain.cofunding`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.api.credit import DECIDE, proposed
from services.ledger.api.funders import FunderId
from services.ledger.deps import (
    Components,
    FunderOrAdmin,
    FunderOrNational,
    Runtime,
    ctx_for,
    idempotent,
)
from services.ledger.handlers import cofunding
from services.ledger.handlers.funders import funder_in_scope
from services.ledger.store import cofunding as store
from shared.errors import InvalidError
from shared.events.budgets import FUNDER_ID_PATTERN
from shared.links import follow

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger


class CofundingRuleRequest(BaseModel):
    """A commitment to pay the shortfall of the enrolments that match every criterion set
    (none set: every enrolment), out of the funder's budget of ``year``."""

    model_config = ConfigDict(extra="forbid")
    year: StrictInt = Field(
        ge=2000,
        le=2200,
        description="the budget drawn on (and the year of the reservations the rule co-funds)",
    )
    share: StrictInt | None = Field(
        default=None, ge=1, le=100, description="percent of the shortfall (default: all of it)"
    )
    cap: StrictInt | None = Field(
        default=None, gt=0, le=100_000_000, description="at most this much per enrolment"
    )
    employer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=FUNDER_ID_PATTERN,
        description="the learner's employer (its employees)",
    )
    region: str | None = Field(
        default=None, min_length=1, max_length=100, description="the course's region"
    )
    isced_prefix: str | None = Field(
        default=None, pattern=r"^[0-9]{2,4}$", description="ISCED-F field, e.g. '06'"
    )
    eqf_min: StrictInt | None = Field(default=None, ge=1, le=8)
    eqf_max: StrictInt | None = Field(default=None, ge=1, le=8)

    @model_validator(mode="after")
    def _pays_something(self) -> CofundingRuleRequest:
        if self.share is None and self.cap is None:
            raise ValueError("a rule sets a share of the shortfall, a cap, or both")
        if self.eqf_min is not None and self.eqf_max is not None and self.eqf_min > self.eqf_max:
            raise ValueError("eqf_min is above eqf_max")
        return self


@router.post(
    "/funders/{funder_id}/cofunding-rules",
    status_code=202,
    responses=follow(202, *DECIDE),
)
async def propose_rule(
    funder_id: FunderId,
    body: CofundingRuleRequest,
    request: Request,
    rt: Runtime,
    parts: Components,
    principal: FunderOrAdmin,
) -> Response:
    """Propose a co-funding rule (its ``rule_id`` in the answer); in force once ``finance``
    approves. An employer co-funds its own employees only (422 ``not_its_employees``)."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        found = await funder_in_scope(session, principal, funder_id)
        own = found["employer_id"]
        if found["kind"] == "employer" and own is not None and body.employer_id != own:
            raise InvalidError(
                f"an employer co-funds its own employees: employer_id must be {own}",
                code="not_its_employees",
                field="employer_id",
            )
        ctx = parts.ledger.context(session, ctx_for(principal))
        rule_id, proposal = await cofunding.propose_rule(
            funder_id, body.model_dump(), principal, parts.four_eyes, ctx
        )
        status, reply, headers = proposed(proposal, parts.clock.now())
        return status, {**reply, "rule_id": str(rule_id)}, headers

    return await idempotent(rt, request, principal, body, effect)


@router.get("/funders/{funder_id}/cofunding-rules")
async def list_rules(
    funder_id: FunderId, rt: Runtime, principal: FunderOrNational
) -> dict[str, Any]:
    """The funder's rules in force, in the order they came into force."""
    async with rt.sessions() as session:
        await funder_in_scope(session, principal, funder_id)
        rules = await store.rules_of(session, funder_id)
    return {
        "funder_id": funder_id,
        "rules": [
            {
                **{k: (str(v) if k.endswith("_id") and v is not None else v) for k, v in r.items()},
                "adopted_at": r["adopted_at"].isoformat(),
            }
            for r in rules
        ],
    }
