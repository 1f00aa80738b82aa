"""Opening, reading and changing accounts: the need profile and the lifecycle (suspend,
reinstate, close, transfer).

A national id that already has an account answers 409 naming the account only to the agency
that manages it; any other agency gets a 409 that names neither the account nor its agency.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts import handlers
from services.accounts.api.schemas import AccountOpenedReply, AccountPage, AccountPublic, public
from services.accounts.commands import LifecycleChange, OpenAccount, TransferAccount, UpdateProfile
from services.accounts.deps import (
    AccountsComponents,
    Agency,
    AgencyOrAuditor,
    Components,
    Reader,
    Runtime,
    agency_of,
    authorize_read,
    ctx_for,
    load_managed,
)
from services.accounts.domain.accounts import Action
from services.accounts.handlers.accounts import Context
from services.accounts.store import accounts as store
from services.accounts.store.accounts import AccountRow
from shared.auth import Principal
from shared.events.accounts import PersonalDataRead, ReadPurpose
from shared.idempotency import run_idempotent
from shared.service import ServiceRuntime

router = APIRouter()


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
    body: OpenAccount, request: Request, rt: Runtime, c: Components, principal: Agency
) -> Response:
    """Open an account for an adult of working age. The same national id again: 409 naming
    the existing account (``account_id``) to the agency that manages it; to any other
    agency, 409 ``managed_by_another_agency`` naming neither the account nor the agency."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = c.context(session, ctx_for(principal))
        account_id = await handlers.open_account(body, agency_of(principal), ctx)
        location = f"/v1/accounts/{account_id}"
        return 201, {"account_id": str(account_id), "status": "active"}, {"Location": location}

    return await run_idempotent(rt, request, principal, body, effect)


@router.get("", response_model=AccountPage)
async def list_accounts(
    rt: Runtime,
    c: Components,
    principal: AgencyOrAuditor,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: uuid.UUID | None = None,
) -> AccountPage:
    """Accounts the agency manages (auditors: all, pseudonymous), by account id."""
    agency = principal.agency_id if principal.role == "agency" else None
    async with rt.sessions() as session:
        ctx = c.context(session, ctx_for(principal))
        rows = await store.list_for_agency(session, agency, after, limit)
        items = [await public(ctx, r, reveal=agency is not None) for r in rows]
    nxt = str(rows[-1].account_id) if len(rows) == limit else None
    return AccountPage(items=items, next=nxt)


@router.get("/{account_id}", response_model=AccountPublic)
async def get_account(
    account_id: uuid.UUID,
    rt: Runtime,
    c: Components,
    principal: Reader,
    purpose: Annotated[
        ReadPurpose | None,
        Query(description="auditors: why the personal data are read (the read is logged)"),
    ] = None,
) -> AccountPublic:
    """The account. An auditor sees it pseudonymously; with a stated ``purpose`` the personal
    data are shown and the read is recorded as a ``PersonalDataRead`` event."""
    async with rt.uow() as session:
        ctx = c.context(session, ctx_for(principal))
        row = authorize_read(principal, account_id, await store.get(session, account_id))
        if principal.role != "auditor":
            return await public(ctx, row)
        if purpose is None or row.erased_at is not None:
            return await public(ctx, row, reveal=False)
        await ctx.emit(PersonalDataRead(account_id=account_id, purpose=purpose, read_at=ctx.now))
        return await public(ctx, row)


Change = Callable[[AccountRow, Context], Awaitable[object]]


async def _change(
    rt: ServiceRuntime,
    c: AccountsComponents,
    principal: Principal,
    account_id: uuid.UUID,
    change: Change,
) -> AccountPublic:
    """Apply ``change`` to an account the agency manages, in one transaction; the account
    as it now is."""
    async with rt.uow() as session:
        ctx = c.context(session, ctx_for(principal))
        row = await load_managed(session, principal, account_id)
        await change(row, ctx)
        updated = await store.get(session, account_id)
        assert updated is not None
        return await public(ctx, updated)


@router.patch("/{account_id}/profile", response_model=AccountPublic)
async def update_profile(
    account_id: uuid.UUID, body: UpdateProfile, rt: Runtime, c: Components, principal: Agency
) -> AccountPublic:
    """Change the need profile (qualification, employment, flags: the flags stay personal
    data; the tier they give is what other services learn)."""
    return await _change(
        rt, c, principal, account_id, lambda row, ctx: handlers.update_profile(row, body, ctx)
    )


# the lifecycle moves, each a POST /{account_id}/<action> with a reason code (and an optional
# note kept with the account, dropped at erasure); its description
LIFECYCLE: dict[Action, str | None] = {
    "suspend": "Suspend: no new reservations until reinstated.",
    "reinstate": None,
    "close": "Close for good: no grants or reservations; the ledger keeps the history.",
}


def _lifecycle_route(action: Action) -> Callable[..., Awaitable[AccountPublic]]:
    async def route(
        account_id: uuid.UUID, body: LifecycleChange, rt: Runtime, c: Components, principal: Agency
    ) -> AccountPublic:
        return await _change(
            rt,
            c,
            principal,
            account_id,
            lambda row, ctx: handlers.change_status(row, action, body, ctx),
        )

    return route


for action, description in LIFECYCLE.items():
    router.add_api_route(
        f"/{{account_id}}/{action}",
        _lifecycle_route(action),
        methods=["POST"],
        response_model=AccountPublic,
        name=action,
        description=description,
    )


@router.post("/{account_id}/transfer", response_model=AccountPublic)
async def transfer(
    account_id: uuid.UUID, body: TransferAccount, rt: Runtime, c: Components, principal: Agency
) -> AccountPublic:
    """Hand the account over to another agency."""
    return await _change(
        rt, c, principal, account_id, lambda row, ctx: handlers.transfer(row, body, ctx)
    )
