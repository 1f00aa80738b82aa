"""Erasure of an account's personal data (crypto-shredding)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from services.accounts.deps import Agency, Components, Runtime, ctx_for, load_managed

router = APIRouter()


@router.delete("/{account_id}/personal-data", status_code=204)
async def erase_personal_data(
    account_id: uuid.UUID, rt: Runtime, c: Components, principal: Agency
) -> Response:
    """Crypto-shred the personal data; the account, its events and the ledger stay whole."""
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        await c.accounts.erase(session, row, ctx_for(principal))
    return Response(status_code=204)
