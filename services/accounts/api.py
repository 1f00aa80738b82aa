"""HTTP endpoints of the accounts service: parse, authorize, call a handler, shape the reply.

Scope: an agency acts on and reads the accounts it manages; for an account another agency
manages it gets the same 404 as for a missing account. A learner reads their own account
(403 for any other id, existing or not); auditors read every account. A national id that
already has an account answers 409 naming the account only to the agency that manages it;
any other agency gets a 409 that names neither the account nor its agency.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts import handlers, imports, store
from services.accounts.commands import LifecycleChange, OpenAccount, TransferAccount, UpdateProfile
from services.accounts.domain import AccountError
from shared.auth import Principal, require
from shared.idempotency import run_idempotent
from shared.outbox import EventContext
from shared.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    Unprocessable,
)
from shared.service import ServiceRuntime, runtime_of

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
Runtime = Annotated[ServiceRuntime, Depends(runtime_of("accounts"))]
Agency = Annotated[Principal, Depends(require("agency"))]
Reader = Annotated[Principal, Depends(require("agency", "learner", "auditor"))]
MAX_IMPORT_BYTES = 20 * 1024 * 1024


class NeedProfilePublic(BaseModel):
    qualification_level: int
    employment_status: str
    need_flags: list[str]


class AccountPublic(BaseModel):
    account_id: uuid.UUID
    agency_id: str
    status: Literal["active", "suspended", "closed"]
    status_reason: str | None
    country: str
    region: str
    birth_year: int
    need_profile: NeedProfilePublic
    personal: dict[str, Any] | None
    personal_data_erased: bool
    opened_at: datetime
    updated_at: datetime


class AccountOpenedReply(BaseModel):
    account_id: uuid.UUID
    status: str


class AccountPage(BaseModel):
    items: list[AccountPublic]
    next: str | None


def config_of(rt: ServiceRuntime) -> handlers.AccountsConfig:
    cfg: handlers.AccountsConfig = rt.state["config"]
    return cfg


def ctx_for(request: Request, principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


async def public(session: AsyncSession, row: store.AccountRow) -> AccountPublic:
    return AccountPublic(
        account_id=row.account_id,
        agency_id=row.agency_id,
        status=row.status,
        status_reason=row.status_reason,
        country=row.country,
        region=row.region,
        birth_year=row.birth_year,
        need_profile=NeedProfilePublic(
            qualification_level=row.qualification_level,
            employment_status=row.employment_status,
            need_flags=list(row.need_flags),
        ),
        personal=await handlers.personal_data(session, row),
        personal_data_erased=row.erased_at is not None,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
    )


def not_found(account_id: uuid.UUID) -> NotFound:
    """One answer for a missing account and for one another agency manages."""
    return NotFound(f"no account {account_id}")


def authorize_read(principal: Principal, row: store.AccountRow) -> None:
    if principal.role == "agency" and principal.agency_id != row.agency_id:
        raise not_found(row.account_id)
    if principal.role == "learner" and principal.account_id != row.account_id:
        raise Forbidden("a learner may read only their own account")


async def load_managed(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> store.AccountRow:
    row = await store.get(session, account_id, lock=True)
    if row is None or principal.agency_id != row.agency_id:
        raise not_found(account_id)
    return row


def domain_problem(exc: AccountError) -> Exception:
    if exc.code == "outside_working_age":
        error = {"field": "birth_date", "in": "body", "message": exc.detail, "type": exc.code}
        return Unprocessable(exc.detail, extra={"errors": [error]})
    return Conflict(exc.detail, extra={"code": exc.code})


@router.post(
    "",
    status_code=201,
    response_model=AccountOpenedReply,
    responses={
        409: {
            "description": "an account exists for this national id (named only to the agency "
            "that manages it)"
        }
    },
)
async def open_account(
    body: OpenAccount, request: Request, rt: Runtime, principal: Agency
) -> Response:
    """Open an account for an adult of working age. The same national id again: 409 naming
    the existing account (``account_id``) to the agency that manages it; to any other
    agency, 409 ``managed_by_another_agency`` naming neither the account nor the agency."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        try:
            opened = await handlers.open_account(
                session,
                rt.outbox,
                config_of(rt),
                body,
                principal.agency_id or "",
                ctx_for(request, principal),
            )
        except AccountError as exc:
            raise domain_problem(exc) from exc
        if not opened.created and opened.named_to(principal.agency_id or ""):
            raise Conflict(
                f"an account already exists for this national id: {opened.account_id}",
                extra={"code": "account_exists", "account_id": str(opened.account_id)},
            )
        if not opened.created:
            raise Conflict(
                "an account already exists for this national id and is managed by another "
                "agency (ask for a transfer)",
                extra={"code": "managed_by_another_agency"},
            )
        location = f"/v1/accounts/{opened.account_id}"
        return (
            201,
            {"account_id": str(opened.account_id), "status": "active"},
            {"Location": location},
        )

    return await run_idempotent(
        rt.sessions, "accounts", request, principal, body.model_dump(mode="json"), effect
    )


@router.get("", response_model=AccountPage)
async def list_accounts(
    rt: Runtime,
    principal: Annotated[Principal, Depends(require("agency", "auditor"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> AccountPage:
    """Accounts the agency manages (auditors: all), by account id."""
    agency = principal.agency_id if principal.role == "agency" else None
    async with rt.sessions() as session:
        rows = await store.list_for_agency(session, agency, after, limit)
        items = [await public(session, r) for r in rows]
    nxt = str(rows[-1].account_id) if len(rows) == limit else None
    return AccountPage(items=items, next=nxt)


@router.get("/{account_id}", response_model=AccountPublic)
async def get_account(account_id: uuid.UUID, rt: Runtime, principal: Reader) -> AccountPublic:
    async with rt.sessions() as session:
        row = await store.get(session, account_id)
        if row is None:
            if principal.role == "learner":
                raise Forbidden("a learner may read only their own account")
            raise NotFound(f"no account {account_id}")
        authorize_read(principal, row)
        return await public(session, row)


@router.patch("/{account_id}/profile", response_model=AccountPublic)
async def update_profile(
    account_id: uuid.UUID, body: UpdateProfile, request: Request, rt: Runtime, principal: Agency
) -> AccountPublic:
    """Change the need profile (qualification, employment, flags)."""
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        try:
            await handlers.update_profile(
                session, rt.outbox, row, body, ctx_for(request, principal)
            )
        except AccountError as exc:
            raise domain_problem(exc) from exc
        updated = await store.get(session, account_id)
        assert updated is not None
        return await public(session, updated)


async def _lifecycle(
    action: str,
    account_id: uuid.UUID,
    body: LifecycleChange,
    request: Request,
    rt: ServiceRuntime,
    principal: Principal,
) -> AccountPublic:
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        try:
            await handlers.change_status(
                session, rt.outbox, row, action, body, ctx_for(request, principal)
            )
        except AccountError as exc:
            raise domain_problem(exc) from exc
        updated = await store.get(session, account_id)
        assert updated is not None
        return await public(session, updated)


@router.post("/{account_id}/suspend", response_model=AccountPublic)
async def suspend(
    account_id: uuid.UUID, body: LifecycleChange, request: Request, rt: Runtime, principal: Agency
) -> AccountPublic:
    """Suspend: no new reservations until reinstated."""
    return await _lifecycle("suspend", account_id, body, request, rt, principal)


@router.post("/{account_id}/reinstate", response_model=AccountPublic)
async def reinstate(
    account_id: uuid.UUID, body: LifecycleChange, request: Request, rt: Runtime, principal: Agency
) -> AccountPublic:
    return await _lifecycle("reinstate", account_id, body, request, rt, principal)


@router.post("/{account_id}/close", response_model=AccountPublic)
async def close(
    account_id: uuid.UUID, body: LifecycleChange, request: Request, rt: Runtime, principal: Agency
) -> AccountPublic:
    """Close for good: no grants or reservations; the ledger keeps the history."""
    return await _lifecycle("close", account_id, body, request, rt, principal)


@router.post("/{account_id}/transfer", response_model=AccountPublic)
async def transfer(
    account_id: uuid.UUID, body: TransferAccount, request: Request, rt: Runtime, principal: Agency
) -> AccountPublic:
    """Hand the account over to another agency."""
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        try:
            await handlers.transfer(session, rt.outbox, row, body, ctx_for(request, principal))
        except AccountError as exc:
            raise domain_problem(exc) from exc
        updated = await store.get(session, account_id)
        assert updated is not None
        return await public(session, updated)


@router.delete("/{account_id}/personal-data", status_code=204)
async def erase_personal_data(
    account_id: uuid.UUID, request: Request, rt: Runtime, principal: Agency
) -> Response:
    """Crypto-shred the personal data; the account, its events and the ledger stay whole."""
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        await handlers.erase(session, rt.outbox, row, ctx_for(request, principal))
    return Response(status_code=204)


class RejectedLine(BaseModel):
    line: int
    error: str


class ImportReportPublic(BaseModel):
    total: int
    opened: int
    existing: int
    rejected_count: int
    rejected: list[RejectedLine]
    ignored_columns: list[str]


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Content too large", "too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


# what browsers and spreadsheet tools send a CSV file as
CSV_MEDIA_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}


async def read_csv_body(request: Request) -> str:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type not in CSV_MEDIA_TYPES:
        raise UnsupportedMediaType(f"send the file as text/csv, not {media_type}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("the file is not UTF-8 text") from exc


@router.post(
    "/imports",
    response_model=ImportReportPublic,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
    responses={
        413: {"description": "the file is too large"},
        415: {"description": "not a CSV body"},
        422: {"description": "no usable header line"},
    },
)
async def import_accounts(request: Request, rt: Runtime, principal: Agency) -> JSONResponse:
    """Bulk onboarding from a CSV body (header line naming the columns; ``need_flags``
    separated by ``;``); answers with a per-line report. Idempotent on the national id."""
    text_data = await read_csv_body(request)
    try:
        report = await imports.run_import(
            rt.sessions,
            rt.outbox,
            config_of(rt),
            text_data,
            principal.agency_id or "",
            ctx_for(request, principal),
        )
    except imports.BadHeader as exc:
        raise Unprocessable(
            str(exc), extra={"errors": [{"field": "header", "in": "body", "message": str(exc)}]}
        ) from exc
    rt.outbox.wake()
    return JSONResponse(report.as_dict())
