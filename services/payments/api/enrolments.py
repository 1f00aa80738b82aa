"""Enrolment endpoints: a provider proposes, the learner confirms or refuses, either cancels,
an agency reviews what the fraud rules held.

Scope: a provider sees its own enrolments, a learner their own, an agency those of the
accounts it manages (anything else answers 404, the same as a missing enrolment);
``finance``, ``auditor`` and ``admin`` read all. Releasing a held enrolment is proposed by
the managing agency (or an admin) and approved by finance (action ``enrolment_release``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import store
from services.payments.api.common import (
    Agency,
    Learner,
    Page,
    Provider,
    ProviderOrLearner,
    Runtime,
    ScopedReader,
    account_scope_filters,
    ctx_for,
    payments_of,
    problem,
    scoped,
)
from services.payments.commands import ConfirmEnrolment, ProposeEnrolment, WithReason
from services.payments.domain import Canceller, EnrolmentStatus, PaymentsError
from services.payments.handlers import enrolments, holds
from shared.approvals_api import four_eyes_of
from shared.auth import Principal
from shared.idempotency import run_idempotent
from shared.problems import Conflict
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/enrolments", tags=["enrolments"])


class EnrolmentPublic(BaseModel):
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    course_id: uuid.UUID
    course_version: int
    session_id: uuid.UUID
    starts_on: date
    ends_on: date
    ends_at: datetime | None  # a completion may be claimed from then on
    status: EnrolmentStatus
    reason: str | None
    hold_reason: str | None
    currency: str
    price: int
    participation_fee: int
    fee_exemption: str | None
    requested: int
    covered: int
    co_payment: int
    available_credit: int | None
    accept_co_payment: bool
    captured: int
    released: int
    cancelled_by: str | None
    cancellation_rule: str | None
    proposed_at: datetime
    expires_at: datetime | None
    confirmed_at: datetime | None
    decided_at: datetime | None
    cancelled_at: datetime | None


class EnrolmentPage(Page):
    items: list[EnrolmentPublic]


def public(row: dict[str, Any], currency: str) -> EnrolmentPublic:
    return EnrolmentPublic(
        **{k: v for k, v in row.items() if k in EnrolmentPublic.model_fields},
        currency=currency,
        available_credit=row["available_at_rejection"],
        cancellation_rule=row["cancellation"],
    )


def body(rt: ServiceRuntime, row: dict[str, Any]) -> Any:
    return public(row, rt.settings.currency).model_dump(mode="json")


async def _load_visible(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any]:
    row = await store.get(session, "enrolments", enrolment_id, lock=lock)
    return await scoped(session, principal, row, "enrolment", enrolment_id)


@router.post("", status_code=202, response_model=EnrolmentPublic)
async def propose(
    cmd: ProposeEnrolment, request: Request, rt: Runtime, principal: Provider
) -> Response:
    """Propose an enrolment; the learner must confirm it before it expires."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        try:
            row = await enrolments.propose(
                payments_of(rt), session, principal.provider_id or "", cmd, principal.actor
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
        location = f"/v1/enrolments/{row['enrolment_id']}"
        return 202, body(rt, row), {"Location": location}

    return await run_idempotent(
        rt.sessions, "payments", request, principal, cmd.model_dump(mode="json"), effect
    )


@router.get("", response_model=EnrolmentPage)
async def list_enrolments(
    rt: Runtime,
    principal: ScopedReader,
    status: EnrolmentStatus | None = None,
    provider_id: str | None = None,
    account_id: uuid.UUID | None = None,
    course_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> EnrolmentPage:
    """Newest first; a provider sees its own, a learner their own, an agency those of the
    accounts it manages."""
    filters = account_scope_filters(
        principal,
        status=status,
        provider_id=provider_id,
        account_id=account_id,
        course_id=course_id,
    )
    async with rt.sessions() as session:
        rows = await store.page(
            session, "enrolments", filters, order="proposed_at", limit=limit, after=after
        )
    return EnrolmentPage(
        items=[public(r, rt.settings.currency) for r in rows],
        next=str(rows[-1]["enrolment_id"]) if len(rows) == limit else None,
    )


@router.get("/{enrolment_id}", response_model=EnrolmentPublic)
async def get_enrolment(
    enrolment_id: uuid.UUID, rt: Runtime, principal: ScopedReader
) -> EnrolmentPublic:
    """Status and amounts: covered by credit, co-payment (the participation fee included)."""
    async with rt.sessions() as session:
        row = await _load_visible(session, principal, enrolment_id)
    return public(row, rt.settings.currency)


@router.post("/{enrolment_id}/confirm", status_code=202, response_model=EnrolmentPublic)
async def confirm(
    enrolment_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    principal: Learner,
    cmd: ConfirmEnrolment | None = None,
) -> Response:
    """The learner consents: credit is reserved (``reserving`` → ``confirmed``/``rejected``)."""
    cmd = cmd or ConfirmEnrolment()
    p = payments_of(rt)
    # a confirmation that comes too late expires the proposal for good, then is refused
    async with rt.uow() as session:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        before = row["status"]
        await enrolments.expire_if_due(p, session, row, ctx_for(request, principal))
    if row["status"] == "expired" and before != "expired":
        raise Conflict("the confirmation period is over", extra={"code": "confirmation_expired"})

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        try:
            row = await enrolments.confirm(p, session, row, cmd, ctx_for(request, principal))
        except PaymentsError as exc:
            raise problem(exc) from exc
        return 202, body(rt, row), {"Location": f"/v1/enrolments/{enrolment_id}"}

    return await run_idempotent(
        rt.sessions, "payments", request, principal, cmd.model_dump(mode="json"), effect
    )


@router.post("/{enrolment_id}/refuse", response_model=EnrolmentPublic)
async def refuse(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, principal: Learner
) -> EnrolmentPublic:
    """The learner refuses: nothing is reserved, the seat is free again."""
    async with rt.uow() as session:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        try:
            row = await enrolments.refuse(
                payments_of(rt), session, row, ctx_for(request, principal)
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
    return public(row, rt.settings.currency)


@router.post("/{enrolment_id}/cancel", status_code=202, response_model=EnrolmentPublic)
async def cancel(
    enrolment_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    principal: ProviderOrLearner,
    cmd: WithReason | None = None,
) -> Response:
    """Cancel under the rules: within the withdrawal period or by the provider, all the credit
    comes back; a late cancellation by the learner leaves the provider a small share."""
    cmd = cmd or WithReason()

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        by: Canceller = "provider" if principal.role == "provider" else "learner"
        try:
            row = await enrolments.cancel(
                payments_of(rt), session, row, by, cmd.reason, ctx_for(request, principal)
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
        return 202, body(rt, row), {}

    return await run_idempotent(
        rt.sessions, "payments", request, principal, cmd.model_dump(mode="json"), effect
    )


@router.post("/{enrolment_id}/release", status_code=202)
async def release_hold(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, principal: Agency
) -> Response:
    """Propose letting an enrolment the velocity rule held go to the learner for consent: an
    agency that manages the learner's account, or an admin, proposes (202 with the proposal,
    action ``enrolment_release``); finance approves at
    ``/v1/payments/approvals/{id}/approve``, and the enrolment then awaits the learner."""
    fe = four_eyes_of(rt)
    async with rt.uow() as session:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        proposal = await holds.propose_enrolment_release(
            fe, session, principal, row, ctx_for(request, principal)
        )
    return JSONResponse(
        proposal.public(fe.clock()),
        status_code=202,
        headers={"Location": f"/v1/payments/approvals/{proposal.approval_id}"},
    )


@router.post("/{enrolment_id}/reject", response_model=EnrolmentPublic)
async def reject_held(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, principal: Agency
) -> EnrolmentPublic:
    """An agency that manages the learner's account (or an admin) rejects an enrolment the
    velocity rule held: nothing was reserved, nothing moves."""
    async with rt.uow() as session:
        row = await _load_visible(session, principal, enrolment_id, lock=True)
        try:
            row = await enrolments.review(
                payments_of(rt), session, row, False, ctx_for(request, principal)
            )
        except PaymentsError as exc:
            raise problem(exc) from exc
    return public(row, rt.settings.currency)
