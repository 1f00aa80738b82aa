"""A funder's settlement statement: ``GET /v1/ledger/funders/{id}/statement?from=&to=``
(the funder itself, finance, auditor): what the funder's lots paid in the period (days, both
included, UTC), each capture's part taken from one of its lots with the enrolment, the claim
and the provider, and each capture reversal's part given back (negative), as JSON or, with
``Accept: text/csv``, as CSV (the totals then in ``X-Statement-*`` headers). The totals
reconcile to the ledger's events to the cent: they are read from them.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.ledger.api.funders import FunderId
from services.ledger.deps import Runtime
from services.ledger.handlers.funders import funder_in_scope
from services.ledger.store.statements import statement_lines
from shared.auth import Principal, require
from shared.errors import InvalidError

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger
StatementReader = Annotated[Principal, Depends(require("funder", "finance", "auditor"))]
MAX_DAYS = 366
COLUMNS = (
    "occurred_at",
    "kind",
    "enrolment_id",
    "claim_id",
    "provider_id",
    "reservation_id",
    "lot_id",
    "lot_kind",
    "lot_year",
    "lot_reason",
    "amount",
)


def _line(row: dict[str, Any]) -> dict[str, Any]:
    return {
        c: (str(row[c]) if row[c] is not None and c.endswith("_id") else row[c]) for c in COLUMNS
    } | {"occurred_at": row["occurred_at"].astimezone(UTC).isoformat()}


def totals(lines: list[dict[str, Any]]) -> dict[str, Any]:
    captured = sum(x["amount"] for x in lines if x["amount"] > 0)
    reversed_ = -sum(x["amount"] for x in lines if x["amount"] < 0)
    by_provider: dict[str, int] = {}
    for x in lines:
        key = x["provider_id"] or ""
        by_provider[key] = by_provider.get(key, 0) + x["amount"]
    return {
        "lines": len(lines),
        "captured": captured,
        "reversed": reversed_,
        "net": captured - reversed_,
        "cofunding": sum(x["amount"] for x in lines if x["lot_reason"] == "cofunding"),
        "by_provider": [
            {"provider_id": p or None, "net": n} for p, n in sorted(by_provider.items())
        ],
    }


@router.get(
    "/funders/{funder_id}/statement",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def statement(
    funder_id: FunderId,
    request: Request,
    rt: Runtime,
    principal: StatementReader,
    start: Annotated[date, Query(alias="from", description="first day (UTC), included")],
    end: Annotated[date, Query(alias="to", description="last day (UTC), included")],
) -> Response:
    """What the funder's lots paid from ``from`` to ``to`` (at most 366 days): captures
    (positive) and capture reversals (negative), totals by provider and what its co-funding
    rules' lots paid (``cofunding``, lines with ``lot_reason`` ``cofunding``); ``Accept:
    text/csv`` for CSV."""
    if end < start:
        raise InvalidError("the period ends before it starts", code="bad_period", field="to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidError(
            f"a statement covers at most {MAX_DAYS} days", code="period_too_long", field="to"
        )
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, UTC)
    async with rt.sessions() as session:
        await funder_in_scope(session, principal, funder_id)
        lines = [_line(r) for r in await statement_lines(session, funder_id, since, until)]
    sums = totals(lines)
    period = {"funder_id": funder_id, "from": start.isoformat(), "to": end.isoformat()}
    if "text/csv" in request.headers.get("accept", ""):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        headers = {
            "X-Statement-Lines": str(sums["lines"]),
            "X-Statement-Captured": str(sums["captured"]),
            "X-Statement-Reversed": str(sums["reversed"]),
            "X-Statement-Net": str(sums["net"]),
            "X-Statement-Cofunding": str(sums["cofunding"]),
            "Content-Disposition": (
                f'attachment; filename="statement-{funder_id}-{start}-{end}.csv"'
            ),
        }
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    return JSONResponse(
        {**period, "currency": rt.settings.currency, "totals": sums, "lines": lines}
    )
