"""HTTP endpoints of the ledger: balances, entries, grants, and the auditors' stream,
verification and statistics. Policies, allocations and reversals (four eyes) are in
:mod:`services.ledger.api_proposals`; the approvals routes come from
:mod:`shared.approvals_api`.

Scope (see :mod:`services.ledger.deps`): an agency reads and grants only on the accounts it
manages, a learner reads their own; any other account answers as a missing one (404).
``POST /v1/ledger/grants`` needs an ``Idempotency-Key`` (428 without)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import audit, store
from services.ledger.api_proposals import router as proposals_router
from services.ledger.commands import GrantCredits
from services.ledger.deps import (
    NATIONAL_READERS,
    AgencyOrAdmin,
    Auditor,
    Reader,
    Runtime,
    authorize_account,
    ctx_for,
    hidden,
    ledger_of,
)
from services.ledger.domain import replay
from shared.approvals_api import approvals_router
from shared.auth import Principal, require
from shared.events.ledger import Earmark
from shared.idempotency import run_idempotent
from shared.problems import Conflict, Unprocessable
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
router.include_router(approvals_router("ledger", ""))
router.include_router(proposals_router)


class LotPublic(BaseModel):
    lot_id: uuid.UUID
    funder_id: str
    kind: str
    year: int | None
    amount: int
    remaining: int
    reserved: int
    expires_at: datetime | None
    earmark: dict[str, Any] | None
    granted_at: datetime


class Balance(BaseModel):
    account_id: uuid.UUID
    currency: str
    status: str
    available: int
    reserved: int
    granted_total: int
    spent_total: int
    expired_total: int
    lots: list[LotPublic]
    version: int
    as_of: datetime | None = None


@router.get("/accounts/{account_id}/balance", response_model=Balance)
async def balance(
    account_id: uuid.UUID, rt: Runtime, principal: Reader, as_of: datetime | None = None
) -> Balance:
    """The wallet now, or at a past instant (``as_of``, RFC 3339) rebuilt from its events."""
    async with rt.sessions() as session:
        await authorize_account(session, principal, account_id)
        if as_of is not None:
            if as_of.tzinfo is None:
                raise Unprocessable("as_of needs a time zone (RFC 3339)")
            rows = await store.load_stream(session, account_id, upto=as_of)
            if not rows and await store.wallet(session, account_id) is None:
                raise hidden(account_id)
            state = replay(r.payload() for r in rows)
            lots = [
                LotPublic(
                    lot_id=lot.lot_id,
                    funder_id=lot.funder_id,
                    kind=lot.kind,
                    year=lot.year,
                    amount=lot.amount,
                    remaining=lot.remaining,
                    reserved=lot.reserved,
                    expires_at=lot.expires_at,
                    earmark=lot.earmark.model_dump(mode="json") if lot.earmark else None,
                    granted_at=lot.granted_at,
                )
                for lot in state.lots.values()
                if lot.remaining > 0
            ]
            return Balance(
                account_id=account_id,
                currency=rt.settings.currency,
                status=state.status,
                available=state.available,
                reserved=state.reserved,
                granted_total=state.granted_total,
                spent_total=state.spent_total,
                expired_total=state.expired_total,
                lots=lots,
                version=state.version,
                as_of=as_of,
            )
        w = await store.wallet(session, account_id)
        if w is None:
            raise hidden(account_id)
        lots = [LotPublic(**lot) for lot in await store.open_lots(session, account_id)]
        return Balance(
            account_id=account_id,
            currency=rt.settings.currency,
            status=w["status"],
            available=w["available"],
            reserved=w["reserved"],
            granted_total=w["granted_total"],
            spent_total=w["spent_total"],
            expired_total=w["expired_total"],
            lots=lots,
            version=w["version"],
        )


class EntriesPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


@router.get("/accounts/{account_id}/entries", response_model=EntriesPage)
async def entries(
    account_id: uuid.UUID,
    rt: Runtime,
    principal: Reader,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="a version")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntriesPage:
    """The account's events in order, each with its hash and the previous hash."""
    async with rt.sessions() as session:
        await authorize_account(session, principal, account_id)
        rows = await store.entries(session, account_id, after, limit)
    return EntriesPage(
        items=[r.as_dict() for r in rows],
        next=str(rows[-1].version) if len(rows) == limit else None,
    )


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=100_000_000, description="minor units")
    funder_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    reason: str = Field(min_length=1, max_length=500)
    expires_at: datetime | None = None
    earmark: Earmark | None = None


@router.post("/grants", status_code=201)
async def grant(
    body: GrantRequest, request: Request, rt: Runtime, principal: AgencyOrAdmin
) -> Response:
    """A top-up lot from a funder, earmarked or not; ``Idempotency-Key`` required (428
    without). An agency grants only to the accounts it manages (others answer 404)."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        await authorize_account(session, principal, body.account_id)
        lot_id = uuid.uuid4()
        outcome = await ledger_of(rt).execute(
            session,
            GrantCredits(
                account_id=body.account_id,
                lot_id=lot_id,
                amount=body.amount,
                funder_id=body.funder_id,
                reason=body.reason,
                kind="top_up",
                expires_at=body.expires_at,
                earmark=body.earmark,
            ),
            ctx_for(principal),
            idempotency_key=request.headers.get("idempotency-key"),
        )
        if not outcome.events:
            raise Conflict("the wallet refused the grant", extra={"code": "grant_refused"})
        return (
            201,
            {
                "lot_id": str(lot_id),
                "account_id": str(body.account_id),
                "amount": body.amount,
                "version": outcome.state.version,
            },
            {},
        )

    return await run_idempotent(
        rt.sessions,
        "ledger",
        request,
        principal,
        body.model_dump(mode="json"),
        effect,
        required=True,
    )


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
        upto = await store.horizon(session)
        rows = await store.events_page(session, after, upto, limit)
    nxt = str(rows[-1].position) if len(rows) == limit else None
    return JSONResponse({"items": [r.as_dict() for r in rows], "next": nxt, "horizon": upto})


async def _ndjson(rt: ServiceRuntime, after: int) -> AsyncIterator[bytes]:
    async with rt.sessions() as session:
        upto = await store.horizon(session)
        while True:
            rows = await store.events_page(session, after, upto, 5000)
            if not rows:
                return
            yield b"".join(json.dumps(r.as_dict(), default=str).encode() + b"\n" for r in rows)
            after = rows[-1].position


@router.post("/audit/verify")
async def verify(rt: Runtime, principal: Auditor) -> dict[str, Any]:
    """Recompute every hash chain and rebuild every wallet; report each mismatch."""
    async with rt.sessions() as session:
        report = await audit.verify(session)
    return report.as_dict()


@router.get("/stats")
async def stats(
    rt: Runtime,
    principal: Annotated[Principal, Depends(require("agency", *NATIONAL_READERS))],
) -> dict[str, Any]:
    """Per year: credit granted, spent and expired by funder; accounts that trained.
    National roles see the country; an agency the accounts it manages."""
    scope = {"agency": principal.agency_id if principal.role == "agency" else None}
    async with rt.sessions() as session:
        rows = (await session.execute(text(STATS_SQL), scope)).mappings().all()
        trained = (await session.execute(text(TRAINED_SQL), scope)).mappings().all()
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
        "generated_at": datetime.now(UTC).isoformat(),
        "years": [years[y] for y in sorted(years)],
    }


IN_SCOPE = """(CAST(:agency AS text) IS NULL OR account_id IN
    (SELECT account_id FROM ledger.account_agencies WHERE agency_id = CAST(:agency AS text)))"""
STATS_SQL = f"""
SELECT EXTRACT(YEAR FROM granted_at)::int AS year, funder_id,
       sum(amount)::bigint AS granted, sum(spent)::bigint AS spent, sum(expired)::bigint AS expired
FROM ledger.lots WHERE {IN_SCOPE} GROUP BY 1, 2 ORDER BY 1, 2
"""
TRAINED_SQL = f"""
SELECT EXTRACT(YEAR FROM reserved_at)::int AS year, count(DISTINCT account_id) AS accounts
FROM ledger.reservations WHERE captured > 0 AND {IN_SCOPE} GROUP BY 1
"""
