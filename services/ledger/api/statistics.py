"""The ledger's monitoring statistics: credit granted, spent, released, expired and
reversed by funder and year. National roles (admin, auditor) see the country; an agency the
accounts it manages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.ledger.deps import Components, Runtime, StatisticsReader, agency_scope
from services.ledger.store import statistics

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger


@router.get("/statistics")
async def ledger_statistics(
    rt: Runtime,
    parts: Components,
    principal: StatisticsReader,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="default: every year")] = None,
) -> dict[str, Any]:
    """Per year and funder: ``granted``, ``spent`` (captured), ``released`` (reservations
    given back to the lots), ``expired``, ``reversed_granted`` and ``reversed_spent``
    (compensating entries), each movement in the year it occurred, with the year's totals.
    The same sums an auditor makes over ``GET /v1/ledger/audit/events``."""
    async with rt.sessions() as session:
        years = await statistics.by_year_and_funder(session, agency_scope(principal), year)
    return {
        "currency": rt.settings.currency,
        "agency_id": agency_scope(principal),
        "figures": list(statistics.FIGURES),
        "years": years,
        "generated_at": parts.clock.now().isoformat(),
    }
