"""The account of a person signing in, found by their national id: asked only by the
people's pages (role ``portal``) with the national id the identity provider vouched for.

The answer names the account and nothing else; the national id goes no further than its
keyed hash, and it is never echoed back, stored or logged. No other route admits the
``portal`` role, so a leaked portal token finds accounts and can do nothing with them.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StringConstraints

from services.accounts.deps import Components, Runtime
from services.accounts.domain.identity import national_id_hash
from services.accounts.store import accounts as store
from shared.auth import Principal, require
from shared.problems import NotFound

router = APIRouter()

Portal = Annotated[Principal, Depends(require("portal"))]


class AccountLookup(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # as an agency enters it (spaces and letter case do not matter)
    national_id: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9 .\-/]{4,32}$")
    ]


class AccountFound(BaseModel):
    account_id: uuid.UUID


@router.post(
    "/lookup",
    response_model=AccountFound,
    responses={404: {"description": "no account for this person"}},
)
async def lookup_account(
    body: AccountLookup, rt: Runtime, c: Components, _: Portal
) -> AccountFound:
    """The account of the person with this national id (role ``portal`` only): the sign-in
    of the people's pages maps the identity provider's answer to an account with it."""
    async with rt.uow() as session:
        found = await store.account_id_by_hash(
            session, national_id_hash(body.national_id, c.config.pepper)
        )
    if found is None:
        raise NotFound("no account for this person")
    return AccountFound(account_id=found[0])
