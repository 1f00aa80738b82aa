"""What auditors and reports read: every ledger event in global order (paged or streamed as
NDJSON), the verification of every chain and wallet, and the yearly statistics (national
roles see the country, an agency the accounts it manages)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from services.ledger import audit
from services.ledger.deps import AgencyOrNational, Auditor, Components, Runtime, agency_scope
from services.ledger.store import audit as audit_reads
from services.ledger.store import projections
from shared.service import ServiceRuntime

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger


@router.get("/audit/events", responses={200: {"content": {"application/x-ndjson": {}}}})
async def audit_events(
    request: Request,
    rt: Runtime,
    principal: Auditor,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="a global position")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """Every ledger event in global order, never skipping one that commits late.

    With ``Accept: application/x-ndjson`` the whole stream from ``after`` is sent as
    newline-delimited JSON; otherwise a page with a ``next`` cursor.
    """
    if "application/x-ndjson" in request.headers.get("accept", ""):
        return StreamingResponse(_ndjson(rt, after), media_type="application/x-ndjson")
    async with rt.sessions() as session:
        upto = await audit_reads.horizon(session)
        rows = await audit_reads.events_page(session, after, upto, limit)
    nxt = str(rows[-1].position) if len(rows) == limit else None
    return JSONResponse({"items": [r.as_dict() for r in rows], "next": nxt, "horizon": upto})


async def _ndjson(rt: ServiceRuntime, after: int) -> AsyncIterator[bytes]:
    async with rt.sessions() as session:
        upto = await audit_reads.horizon(session)
        while True:
            rows = await audit_reads.events_page(session, after, upto, 5000)
            if not rows:
                return
            yield b"".join(json.dumps(r.as_dict(), default=str).encode() + b"\n" for r in rows)
            after = rows[-1].position


@router.post("/audit/verify")
async def verify(rt: Runtime, principal: Auditor) -> dict[str, Any]:
    """Recompute every hash chain and rebuild every wallet; report each mismatch."""
    async with rt.sessions() as session:
        report = await audit.verify(session, rt.settings.ledger_checkpoint_key.encode())
    return report.as_dict()


@router.get("/stats")
async def stats(rt: Runtime, parts: Components, principal: AgencyOrNational) -> dict[str, Any]:
    """Per year: credit granted, spent and expired by funder; accounts that trained.
    National roles see the country; an agency the accounts it manages."""
    async with rt.sessions() as session:
        rows, trained = await projections.yearly_stats(session, agency_scope(principal))
    years: dict[int, dict[str, Any]] = {}
    for r in rows:
        y = years.setdefault(r["year"], {"year": r["year"], "by_funder": {}, "accounts_trained": 0})
        y["by_funder"][r["funder_id"]] = {
            "granted": r["granted"],
            "spent": r["spent"],
            "expired": r["expired"],
        }
    for r in trained:
        years.setdefault(r["year"], {"year": r["year"], "by_funder": {}, "accounts_trained": 0})
        years[r["year"]]["accounts_trained"] = r["accounts"]
    return {
        "currency": rt.settings.currency,
        "generated_at": parts.clock.now().isoformat(),
        "years": [years[y] for y in sorted(years)],
    }
