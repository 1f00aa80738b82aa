"""Payout endpoints: runs, payouts with remittance lines, their SEPA file, settlement; and the
bank account (payee) each provider is paid to."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import sepa, store
from services.payments.api.common import (
    Agency,
    Page,
    ProviderReader,
    Runtime,
    ctx_for,
    payments_of,
    problem,
    scope_filters,
    visible,
)
from services.payments.commands import FailPayout, RunPayouts, SetPayee
from services.payments.domain import PaymentsError
from services.payments.handlers import payouts
from shared.auth import Principal
from shared.idempotency import run_idempotent
from shared.problems import NotFound, Unprocessable
from shared.service import ServiceRuntime

router = APIRouter(tags=["payouts"])
PayoutStatus = Literal["sent", "settled", "failed"]


class RemittanceLine(BaseModel):
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    milestone: str
    amount: int


class PayoutPublic(BaseModel):
    payout_id: uuid.UUID
    run_id: uuid.UUID
    provider_id: str
    status: PayoutStatus
    amount: int
    currency: str
    creditor_name: str
    iban: str
    bic: str | None
    execution_date: date
    failure_reason: str | None
    created_at: datetime
    settled_at: datetime | None
    failed_at: datetime | None
    lines: list[RemittanceLine] | None = None


class PayoutPage(Page):
    items: list[PayoutPublic]


class RunPublic(BaseModel):
    run_id: uuid.UUID
    requested_by: str
    execution_date: date
    payouts: list[PayoutPublic]
    claims: int
    total: int
    skipped: list[dict[str, Any]]
    created_at: datetime


class PayeePublic(BaseModel):
    provider_id: str
    name: str
    iban: str
    bic: str | None
    updated_by: str
    updated_at: datetime


def payout_public(row: dict[str, Any], lines: list[dict[str, Any]] | None = None) -> PayoutPublic:
    return PayoutPublic(
        **{k: v for k, v in row.items() if k in PayoutPublic.model_fields},
        lines=[RemittanceLine(**line) for line in lines] if lines is not None else None,
    )


async def run_public(session: AsyncSession, run: dict[str, Any]) -> RunPublic:
    rows = await store.payouts_of_run(session, run["run_id"])
    return RunPublic(
        **{k: v for k, v in run.items() if k in RunPublic.model_fields and k != "payouts"},
        payouts=[payout_public(r) for r in rows],
    )


@router.post("/v1/payouts/runs", status_code=202, response_model=RunPublic)
async def run_payouts(
    request: Request, rt: Runtime, principal: Agency, cmd: RunPayouts | None = None
) -> Response:
    """Batch every captured, unpaid claim per provider into one payout (a second run finds
    nothing left to pay). Providers without a bank account are listed as skipped."""
    cmd = cmd or RunPayouts()

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        run = await payouts.run_payouts(
            payments_of(rt),
            session,
            actor=principal.actor,
            currency=rt.settings.currency,
            execution_date=cmd.execution_date,
            ctx=ctx_for(request, principal),
        )
        reply = (await run_public(session, run)).model_dump(mode="json")
        return 202, reply, {"Location": f"/v1/payouts/runs/{run['run_id']}"}

    return await run_idempotent(
        rt.sessions, "payments", request, principal, cmd.model_dump(mode="json"), effect
    )


@router.get("/v1/payouts/runs/{run_id}", response_model=RunPublic)
async def get_run(run_id: uuid.UUID, rt: Runtime, principal: Agency) -> RunPublic:
    async with rt.sessions() as session:
        run = await store.run(session, run_id)
        if run is None:
            raise NotFound(f"no payout run {run_id}")
        return await run_public(session, run)


@router.get("/v1/payouts", response_model=PayoutPage)
async def list_payouts(
    rt: Runtime,
    principal: ProviderReader,
    status: PayoutStatus | None = None,
    provider_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> PayoutPage:
    """Newest first; a provider sees its own."""
    filters = scope_filters(principal, status=status, provider_id=provider_id)
    async with rt.sessions() as session:
        rows = await store.page(
            session, "payouts", filters, order="created_at", limit=limit, after=after
        )
    return PayoutPage(
        items=[payout_public(r) for r in rows],
        next=str(rows[-1]["payout_id"]) if len(rows) == limit else None,
    )


async def _payout(
    session: AsyncSession, principal: Principal, payout_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any]:
    row = await store.get(session, "payouts", payout_id, lock=lock)
    return visible(principal, row, "payout", payout_id)


@router.get("/v1/payouts/{payout_id}", response_model=PayoutPublic)
async def get_payout(payout_id: uuid.UUID, rt: Runtime, principal: ProviderReader) -> PayoutPublic:
    """The payout with its remittance lines (one per claim)."""
    async with rt.sessions() as session:
        row = await _payout(session, principal, payout_id)
        lines = await store.payout_lines(session, payout_id)
    return payout_public(row, lines)


@router.get(
    "/v1/payouts/{payout_id}/sepa",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def get_sepa(payout_id: uuid.UUID, rt: Runtime, principal: ProviderReader) -> Response:
    """The payout as an ISO 20022 pain.001 credit-transfer file (validated against its XSD)."""
    async with rt.sessions() as session:
        row = await _payout(session, principal, payout_id)
        lines = await store.payout_lines(session, payout_id)
    xml = sepa.pain001(payments_of(rt).config, row, lines)
    return Response(
        xml,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="payout-{payout_id}.xml"'},
    )


async def _settlement(
    rt: ServiceRuntime,
    request: Request,
    principal: Principal,
    payout_id: uuid.UUID,
    reason: str | None,
) -> PayoutPublic:
    async with rt.uow() as session:
        row = await store.get(session, "payouts", payout_id, lock=True)
        if row is None:
            raise NotFound(f"no payout {payout_id}")
        ctx = ctx_for(request, principal)
        try:
            if reason is None:
                row = await payouts.settle(payments_of(rt), session, row, ctx)
            else:
                row = await payouts.fail(payments_of(rt), session, row, reason, ctx)
        except PaymentsError as exc:
            raise problem(exc) from exc
        lines = await store.payout_lines(session, payout_id)
    return payout_public(row, lines)


@router.post("/v1/payouts/{payout_id}/settle", response_model=PayoutPublic)
async def settle(
    payout_id: uuid.UUID, request: Request, rt: Runtime, principal: Agency
) -> PayoutPublic:
    """The bank executed the transfer: its claims are paid."""
    return await _settlement(rt, request, principal, payout_id, None)


@router.post("/v1/payouts/{payout_id}/fail", response_model=PayoutPublic)
async def fail(
    payout_id: uuid.UUID, cmd: FailPayout, request: Request, rt: Runtime, principal: Agency
) -> PayoutPublic:
    """The transfer bounced: its claims are payable again in the next run."""
    return await _settlement(rt, request, principal, payout_id, cmd.reason)


@router.put("/v1/payees/{provider_id}", response_model=PayeePublic)
async def set_payee(provider_id: str, cmd: SetPayee, rt: Runtime, principal: Agency) -> PayeePublic:
    """Where the provider is paid (IBAN and BIC are checked)."""
    try:
        iban, bic = sepa.normalise_bank_account(cmd.iban, cmd.bic)
    except sepa.InvalidBankAccount as exc:
        raise Unprocessable(
            f"invalid bank account: {exc}",
            extra={"errors": [{"field": "iban", "message": str(exc)}]},
        ) from exc
    async with rt.uow() as session:
        await store.upsert_payee(
            session,
            provider_id,
            name=cmd.name,
            iban=iban,
            bic=bic,
            actor=principal.actor,
            now=payments_of(rt).clock.now(),
        )
        row = await store.payee(session, provider_id)
    assert row is not None
    return PayeePublic(**row)


@router.get("/v1/payees/{provider_id}", response_model=PayeePublic)
async def get_payee(provider_id: str, rt: Runtime, principal: ProviderReader) -> PayeePublic:
    async with rt.sessions() as session:
        row = await store.payee(session, provider_id)
    return PayeePublic(**visible(principal, row, "payee", provider_id))
