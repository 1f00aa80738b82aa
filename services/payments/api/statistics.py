"""Payments' monitoring statistics: enrolments, completions and payouts month by month, and
the fraud holds standing. National roles (admin, auditor) see the country; an agency what
hangs off the accounts it manages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.payments.deps import Runtime, components, run_scope
from services.payments.store import statistics
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/payments", tags=["payments"])

StatisticsReader = Annotated[Principal, Depends(require("agency", "auditor", "admin"))]


@router.get("/statistics")
async def payments_statistics(
    rt: Runtime,
    principal: StatisticsReader,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")] = None,
) -> dict[str, Any]:
    """Month by month in ``year``: ``enrolments`` the learners consented to, ``completions``
    (completion claims captured), ``payouts`` sent and what they ``paid`` for claims (before
    recoveries are netted), ``guidance_plans`` recorded (outcomes of guidance sessions);
    ``holds``: the claims and enrolments held now (fraud holds and
    contested claims), by reason, with their amounts."""
    now = components(rt).clock.now()
    year = year or now.year
    scope = run_scope(principal)
    async with rt.sessions() as session:
        figures = await statistics.yearly(session, year, scope)
    return {
        "year": year,
        "currency": rt.settings.currency,
        "agency_id": scope,
        **figures,
        "generated_at": now.isoformat(),
    }
