"""The monitoring statistics of accounts: the share of account holders who trained in a
year against the 60% target, by region, age band, need tier and ISCED-F field. National
roles (admin, auditor) see the country; an agency the accounts it manages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.accounts.deps import Components, Runtime, StatisticsReader, agency_scope
from services.accounts.store import statistics

router = APIRouter()

TARGET_PERCENT = 60
"""The EU 2030 target: 60% of adults take part in training every year."""


@router.get("/statistics")
async def accounts_statistics(
    rt: Runtime,
    parts: Components,
    principal: StatisticsReader,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> dict[str, Any]:
    """Account holders active during ``year`` and those who trained (an enrolment confirmed
    that year), in total and by region, age band, need tier; trained by ISCED-F broad field
    (a learner trained in two fields counts in each). ``region`` narrows to one region."""
    now = parts.clock.now()
    year = year or now.year
    scope = agency_scope(principal)
    async with rt.sessions() as session:
        figures = await statistics.yearly(session, year, scope, region)
        regions = await statistics.regions(session, scope)
    return {
        "year": year,
        "region": region,
        "agency_id": scope,
        "target_percent": TARGET_PERCENT,
        **figures,
        "regions": regions,
        "generated_at": now.isoformat(),
    }
