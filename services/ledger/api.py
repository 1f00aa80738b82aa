"""HTTP endpoints of the ledger: balances, entries, grants, policies, allocations,
reversals, and the auditors' stream, verification and statistics."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import allocation, audit, store
from services.ledger.commands import CaptureTarget, GrantCredits, GrantTarget, ReverseEntry
from services.ledger.domain import EntitlementPolicy, LedgerError, replay
from services.ledger.handlers import Ledger
from shared.approvals_api import approvals_router
from shared.auth import Principal, require
from shared.events.ledger import Earmark
from shared.idempotency import run_idempotent
from shared.outbox import EventContext
from shared.problems import Conflict, Forbidden, NotFound, Unprocessable
from shared.service import ServiceRuntime, runtime_of

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
router.include_router(approvals_router("ledger", ""))
Runtime = Annotated[ServiceRuntime, Depends(runtime_of("ledger"))]
Reader = Annotated[Principal, Depends(require("agency", "learner", "auditor"))]
Admin = Annotated[Principal, Depends(require("admin"))]
AgencyOrAdmin = Annotated[Principal, Depends(require("agency", "admin"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]


def ledger_of(rt: ServiceRuntime) -> Ledger:
    ledger: Ledger = rt.state["ledger"]
    return ledger


def ctx_for(principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


def domain_problem(exc: LedgerError) -> Exception:
    """The domain error's category decides the status: not found, conflict or invalid."""
    kind = {"not_found": NotFound, "invalid": Unprocessable}.get(exc.category, Conflict)
    return kind(str(exc), extra={"code": exc.code})


async def authorize_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> None:
    if principal.role == "learner" and principal.account_id != account_id:
        raise Forbidden("a learner may read only their own account")
    if principal.role == "agency":
        agency = await store.agency_of(session, account_id)
        if agency is not None and agency != principal.agency_id:
            raise Forbidden("this account is managed by another agency")


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
                raise NotFound(f"no wallet for account {account_id}")
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
            raise NotFound(f"no wallet for account {account_id}")
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
    """A top-up lot from a funder, earmarked or not."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        if principal.role == "agency":
            agency = await store.agency_of(session, body.account_id)
            if agency is not None and agency != principal.agency_id:
                raise Forbidden("this account is managed by another agency")
        lot_id = uuid.uuid4()
        try:
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
        except LedgerError as exc:
            raise domain_problem(exc) from exc
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
        rt.sessions, "ledger", request, principal, body.model_dump(mode="json"), effect
    )


@router.put("/policies/{year}", response_model=EntitlementPolicy)
async def put_policy(
    year: Annotated[int, Field(ge=2000, le=2200)],
    body: dict[str, Any],
    rt: Runtime,
    principal: Admin,
) -> EntitlementPolicy:
    """The entitlement policy for a year (amounts in minor units)."""
    try:
        policy = EntitlementPolicy.model_validate({**body, "year": year})
    except ValueError as exc:
        raise Unprocessable(f"invalid policy: {exc}") from exc
    async with rt.uow() as session:
        await store.put_policy(session, year, policy.model_dump(mode="json"), principal.actor)
    return policy


@router.get("/policies/{year}", response_model=EntitlementPolicy)
async def get_policy(
    year: Annotated[int, Field(ge=2000, le=2200)],
    rt: Runtime,
    principal: Annotated[Principal, Depends(require("admin", "agency", "auditor"))],
) -> EntitlementPolicy:
    """The policy in force for a year (the defaults when none was set)."""
    async with rt.sessions() as session:
        return await allocation.policy_for(session, year)


class AllocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: StrictInt = Field(ge=2000, le=2200)


class AllocationPublic(BaseModel):
    allocation_id: uuid.UUID
    year: int
    status: Literal["running", "finished", "failed"]
    requested_by: str
    total_accounts: int
    processed: int
    granted_count: int
    granted_amount: int
    skipped: int
    progress: float
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def allocation_public(run: dict[str, Any]) -> AllocationPublic:
    total = run["total_accounts"]
    # a ratio for display only; no money is ever a float
    progress = 1.0 if run["status"] == "finished" else (run["processed"] / total if total else 0.0)
    return AllocationPublic(
        progress=round(min(progress, 1.0), 4),
        **{k: v for k, v in run.items() if k in AllocationPublic.model_fields},
    )


@router.post("/allocations", status_code=202, response_model=AllocationPublic)
async def start_allocation(
    body: AllocationRequest, rt: Runtime, principal: AgencyOrAdmin, background: BackgroundTasks
) -> Response:
    """Run the yearly allocation; idempotent per account and year. Poll the resource."""
    allocation_id, _ = await allocation.start_allocation(rt.sessions, body.year, principal.actor)
    background.add_task(allocation.run_allocation, rt.sessions, ledger_of(rt), allocation_id)
    async with rt.sessions() as session:
        run = await store.get_allocation(session, allocation_id)
    assert run is not None
    return JSONResponse(
        allocation_public(run).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/ledger/allocations/{allocation_id}"},
        background=background,
    )


@router.get("/allocations/{allocation_id}", response_model=AllocationPublic)
async def get_allocation(
    allocation_id: uuid.UUID, rt: Runtime, principal: AgencyOrAdmin
) -> AllocationPublic:
    async with rt.sessions() as session:
        run = await store.get_allocation(session, allocation_id)
    if run is None:
        raise NotFound(f"no allocation {allocation_id}")
    return allocation_public(run)


class ReversalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: GrantTarget | CaptureTarget = Field(discriminator="kind")
    reason: str = Field(min_length=1, max_length=500)


@router.post("/accounts/{account_id}/reversals", status_code=201)
async def reverse(
    account_id: uuid.UUID, body: ReversalRequest, request: Request, rt: Runtime, principal: Admin
) -> Response:
    """Compensate a grant or a capture; the original entry stays on record."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        try:
            outcome = await ledger_of(rt).execute(
                session,
                ReverseEntry(
                    account_id=account_id,
                    target=body.target,
                    reason=body.reason,
                    actor=principal.actor,
                ),
                ctx_for(principal),
                idempotency_key=request.headers.get("idempotency-key"),
            )
        except LedgerError as exc:
            raise domain_problem(exc) from exc
        if not outcome.events:
            raise Conflict("nothing to reverse", extra={"code": "nothing_to_reverse"})
        return (
            201,
            {
                "account_id": str(account_id),
                "version": outcome.state.version,
                "events": [e.model_dump(mode="json") for e in outcome.events],
            },
            {},
        )

    return await run_idempotent(
        rt.sessions, "ledger", request, principal, body.model_dump(mode="json"), effect
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
    rt: Runtime, principal: Annotated[Principal, Depends(require("agency", "auditor"))]
) -> dict[str, Any]:
    """Per year: credit granted, spent and expired by funder; accounts that trained."""
    async with rt.sessions() as session:
        rows = (await session.execute(text(STATS_SQL))).mappings().all()
        trained = (await session.execute(text(TRAINED_SQL))).mappings().all()
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


STATS_SQL = """
SELECT EXTRACT(YEAR FROM granted_at)::int AS year, funder_id,
       sum(amount)::bigint AS granted, sum(spent)::bigint AS spent, sum(expired)::bigint AS expired
FROM ledger.lots GROUP BY 1, 2 ORDER BY 1, 2
"""
TRAINED_SQL = """
SELECT EXTRACT(YEAR FROM reserved_at)::int AS year, count(DISTINCT account_id) AS accounts
FROM ledger.reservations WHERE captured > 0 GROUP BY 1
"""
