"""Erasure of an account's personal data (crypto-shredding)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from services.accounts.deps import Agency, Components, Runtime, ctx_for, load_managed
from services.accounts.handlers.accounts import erase

router = APIRouter()


@router.delete("/{account_id}/personal-data", status_code=204)
async def erase_personal_data(
    account_id: uuid.UUID, rt: Runtime, c: Components, principal: Agency
) -> Response:
    """Crypto-shred the personal data (names, contact data, birth date, need flags) and drop
    the free-text note, country and region; the account (its agency, status and need
    profile), its events and the ledger stay whole."""
    async with rt.uow() as session:
        row = await load_managed(session, principal, account_id)
        await erase(row, c.context(session, ctx_for(principal)))
    return Response(status_code=204)
