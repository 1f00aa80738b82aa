"""Payout endpoints: runs released by four eyes, payouts with remittance lines, their SEPA
file, the bank's settlement or return.

Roles and scope:

- ``POST /v1/payouts/runs`` — ``agency`` (the providers it registered) or ``admin``
  (national); ``Idempotency-Key`` required (428 without). Answers 202 with the run in status
  ``proposed`` and its release proposal (``approval``; ``Location`` is the proposal): the
  claims are bound to the run's payouts, nothing is sent. ``finance`` approves it at
  ``POST /v1/payments/approvals/{id}/approve`` (payouts ``sent``) or refuses it (payouts
  ``cancelled``, claims payable again). A run that only holds or skips providers is
  ``empty``; one with nothing at all in the caller's scope is refused (409
  ``nothing_to_pay``).
- ``GET /v1/payouts/runs[/{id}]`` — the agency that ran it, ``admin``, ``finance``,
  ``auditor``.
- ``GET /v1/payouts[/{id}]``, ``GET /v1/payouts/{id}/sepa`` — the provider (its own), the
  agency that registered the provider, ``admin``, ``finance``, ``auditor``. The file of a
  payout not (yet) released answers 409 ``payout_not_released``. A payout's remittance is
  what its claims owe (``owed``, ``lines``), the provider's recoveries netted against it
  (``recovered``, ``recoveries``: each with the reversed claim it comes from) and the
  transfer (``amount`` = owed - recovered); a payout netted in full transfers nothing and
  has no file (409 ``payout_netted``).
- ``POST /v1/payouts/{id}/settle`` and ``/fail`` — ``finance`` only: recording the bank's
  answer is reconciliation, a finance act; an agency that could fail a payout could have it
  paid again. ``fail`` takes ``{"reason_code": "AC04"}`` (ISO 20022 return reason, 422
  otherwise) and is refused for a settled payout (409 ``payout_settled``).

Anything outside the caller's scope answers 404, the same as what does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.commands import FailPayout, RunPayouts
from services.payments.deps import (
    Finance,
    Page,
    PayoutReader,
    RunProposer,
    RunReader,
    Runtime,
    components,
    ctx_for,
    run_scope,
    sees_payout,
    sees_run,
    shown,
)
from services.payments.domain.errors import Unknown
from services.payments.domain.payouts import (
    Payout,
    PayoutLine,
    PayoutRun,
    PayoutStatus,
    RunStatus,
)
from services.payments.domain.recoveries import Netting
from services.payments.handlers import payouts
from services.payments.store import payouts as store
from services.payments.store import recoveries as recovery_store
from services.payments.store import rows
from shared.auth import Principal
from shared.idempotency import run_idempotent
from shared.links import decisions, follow
from shared.service import ServiceRuntime

router = APIRouter(tags=["payouts"])


class RemittanceLine(BaseModel):
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    milestone: str
    amount: int


class RecoveryLine(BaseModel):
    """A recovery netted against the payout: ``claim_id`` is the reversed claim it comes
    from, ``amount`` what this payout recovered of it; ``live`` is false once the payout
    was cancelled or failed (the amount is owed again)."""

    recovery_id: uuid.UUID
    claim_id: uuid.UUID
    amount: int
    live: bool


class PayoutPublic(BaseModel):
    payout_id: uuid.UUID
    run_id: uuid.UUID
    provider_id: str
    status: PayoutStatus
    amount: int
    owed: int
    recovered: int
    currency: str
    creditor_name: str
    iban: str
    bic: str | None
    execution_date: date
    failure_reason: str | None
    cancel_reason: str | None = None
    created_at: datetime
    settled_at: datetime | None
    failed_at: datetime | None
    lines: list[RemittanceLine] | None = None
    recoveries: list[RecoveryLine] | None = None


class PayoutPage(Page):
    items: list[PayoutPublic]


class RunPublic(BaseModel):
    run_id: uuid.UUID
    requested_by: str
    status: RunStatus
    approval_id: uuid.UUID | None = None
    execution_date: date
    payouts: list[PayoutPublic]
    claims: int
    total: int
    recovered: int = 0
    skipped: list[dict[str, Any]]
    created_at: datetime
    decided_at: datetime | None = None
    approval: dict[str, Any] | None = None


class RunPage(Page):
    items: list[RunPublic]


def payout_public(
    payout: Payout,
    lines: list[PayoutLine] | None = None,
    nettings: list[Netting] | None = None,
) -> PayoutPublic:
    return PayoutPublic(
        **shown(payout, PayoutPublic),
        owed=payout.owed,
        lines=[RemittanceLine(**asdict(line)) for line in lines] if lines is not None else None,
        recoveries=(
            [RecoveryLine(**asdict(n)) for n in nettings] if nettings is not None else None
        ),
    )


async def remittance(session: AsyncSession, payout: Payout) -> PayoutPublic:
    """The payout with its claims and the recoveries netted against it."""
    lines = await store.payout_lines(session, payout.payout_id)
    nettings = await recovery_store.nettings_of(session, payout.payout_id)
    return payout_public(payout, lines, nettings)


async def run_public(
    rt: ServiceRuntime,
    session: AsyncSession,
    run: PayoutRun,
    principal: Principal,
    approval: dict[str, Any] | None = None,
) -> RunPublic:
    payouts_of_run = await store.payouts_of_run(session, run.run_id)
    fields = shown(run, RunPublic)
    fields.pop("payouts", None)
    fields["approval"] = approval
    if approval is None and run.approval_id is not None:
        fe = components(rt).four_eyes
        proposal = await fe.get(session, run.approval_id)
        if proposal is not None:
            now = fe.clock()
            fields["approval"] = proposal.public(now)
            # a release nobody decided in time: the next run returns its claims
            if run.status == "proposed" and proposal.status_at(now) == "expired":
                fields["status"] = "expired"
    return RunPublic(
        **fields, payouts=[payout_public(p) for p in payouts_of_run if sees_payout(principal, p)]
    )


@router.post(
    "/v1/payouts/runs",
    status_code=202,
    response_model=RunPublic,
    responses=follow(202, "GET /v1/payouts/runs/{run_id}", *decisions("/v1/payments/approvals")),
)
async def run_payouts(
    request: Request, rt: Runtime, principal: RunProposer, cmd: RunPayouts | None = None
) -> Response:
    """Assemble a payout run (per provider, every captured, unpaid claim) and propose its
    release to finance. An agency's run covers the providers it registered; providers
    without a bank account, or whose bank details changed less than the cooling-off period
    ago and are not verified, are listed in ``skipped`` with the reason (and the provider
    is told by a ``PayoutHeld`` event). ``Idempotency-Key`` is required."""
    cmd = cmd or RunPayouts()

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        c = components(rt)
        ctx = c.context(session, ctx_for(principal))
        proposed = await payouts.run_payouts(
            cmd, principal, c.four_eyes, ctx, currency=rt.settings.currency
        )
        run = proposed.run
        public = await run_public(rt, session, run, principal, proposed.approval)
        reply = public.model_dump(mode="json")
        location = (
            f"/v1/payments/approvals/{run.approval_id}"
            if run.approval_id
            else f"/v1/payouts/runs/{run.run_id}"
        )
        return 202, reply, {"Location": location}

    return await run_idempotent(rt, request, principal, cmd, effect, required=True)


@router.get("/v1/payouts/runs", response_model=RunPage)
async def list_runs(
    rt: Runtime,
    principal: RunReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> RunPage:
    """Runs newest first; an agency sees the runs it made."""
    async with rt.sessions() as session:
        runs = await store.runs_page(session, run_scope(principal), limit, after)
        items = [await run_public(rt, session, r, principal) for r in runs]
    return RunPage(items=items, next=str(runs[-1].run_id) if len(runs) == limit else None)


@router.get("/v1/payouts/runs/{run_id}", response_model=RunPublic)
async def get_run(run_id: uuid.UUID, rt: Runtime, principal: RunReader) -> RunPublic:
    async with rt.sessions() as session:
        run = await rows.get(session, PayoutRun, run_id)
        if run is None or not sees_run(principal, run):
            raise Unknown("run_not_found", f"no payout run {run_id}")
        return await run_public(rt, session, run, principal)


@router.get("/v1/payouts", response_model=PayoutPage)
async def list_payouts(
    rt: Runtime,
    principal: PayoutReader,
    status: PayoutStatus | None = None,
    provider_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> PayoutPage:
    """Newest first; a provider sees its own, an agency those of the providers it
    registered."""
    filters: dict[str, Any] = {"status": status, "provider_id": provider_id}
    if principal.role == "provider":
        if provider_id not in (None, principal.provider_id):
            return PayoutPage(items=[], next=None)
        filters["provider_id"] = principal.provider_id
    elif principal.role == "agency":
        filters["agency_id"] = principal.agency_id
    async with rt.sessions() as session:
        page = await rows.page(
            session, Payout, filters, order="created_at", limit=limit, after=after
        )
    return PayoutPage(
        items=[payout_public(p) for p in page],
        next=str(page[-1].payout_id) if len(page) == limit else None,
    )


async def _payout(
    session: AsyncSession, principal: Principal, payout_id: uuid.UUID, *, lock: bool = False
) -> Payout:
    payout = await rows.get(session, Payout, payout_id, lock=lock)
    if payout is None or not sees_payout(principal, payout):
        raise Unknown("payout_not_found", f"no payout {payout_id}")
    return payout


@router.get("/v1/payouts/{payout_id}", response_model=PayoutPublic)
async def get_payout(payout_id: uuid.UUID, rt: Runtime, principal: PayoutReader) -> PayoutPublic:
    """The payout's remittance: its lines (one per claim) and the recoveries netted
    against it, each with the reversed claim it comes from."""
    async with rt.sessions() as session:
        payout = await _payout(session, principal, payout_id)
        return await remittance(session, payout)


@router.get(
    "/v1/payouts/{payout_id}/sepa",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def get_sepa(payout_id: uuid.UUID, rt: Runtime, principal: PayoutReader) -> Response:
    """The released payout as an ISO 20022 pain.001 credit-transfer file (validated against
    its XSD): MsgId and PmtInfId are the payout's, each transaction's EndToEndId the
    claim's (the same when a claim is paid again after a bank return). 409
    ``payout_not_released`` while the run waits for release or after it was refused."""
    async with rt.sessions() as session:
        payout = await _payout(session, principal, payout_id)
        xml = await payouts.payout_file(payout, components(rt).context(session, ctx_for(principal)))
    return Response(
        xml,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="payout-{payout_id}.xml"'},
    )


@router.post("/v1/payouts/{payout_id}/settle", response_model=PayoutPublic)
async def settle(payout_id: uuid.UUID, rt: Runtime, principal: Finance) -> PayoutPublic:
    """Finance records that the bank executed the transfer: its claims are paid."""
    async with rt.uow() as session:
        payout = await _payout(session, principal, payout_id, lock=True)
        payout = await payouts.settle(payout, components(rt).context(session, ctx_for(principal)))
        return await remittance(session, payout)


@router.post("/v1/payouts/{payout_id}/fail", response_model=PayoutPublic)
async def fail(
    payout_id: uuid.UUID, cmd: FailPayout, rt: Runtime, principal: Finance
) -> PayoutPublic:
    """Finance records the bank's return of the transfer, with its ISO 20022 reason code:
    the claims are payable again (a new run pays them under the same end-to-end ids)."""
    async with rt.uow() as session:
        payout = await _payout(session, principal, payout_id, lock=True)
        ctx = components(rt).context(session, ctx_for(principal))
        payout = await payouts.fail(payout, cmd, ctx)
        return await remittance(session, payout)
