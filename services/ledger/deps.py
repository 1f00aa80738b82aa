"""What the ledger's routes share: the runtime, the roles each kind of route admits, and the
scope rule for accounts.

Scope: a learner reads only their own account and an agency only the accounts it manages;
anything else answers exactly as an account that does not exist (404 ``wallet_not_found``,
"no wallet for account <id>"), so an answer never tells whether another agency's account
exists. National roles (``auditor``, ``admin``, ``finance``) read every account. ``funder``
and ``qa`` neither read accounts nor write to the ledger.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import store
from services.ledger.domain import WalletNotFound
from services.ledger.handlers import Ledger
from shared.approvals import FourEyes
from shared.approvals_api import four_eyes_of
from shared.auth import Principal, Role, require
from shared.outbox import EventContext
from shared.service import ServiceRuntime, runtime_of

NATIONAL_READERS: tuple[Role, ...] = ("auditor", "admin", "finance")

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("ledger"))]
Reader = Annotated[Principal, Depends(require("agency", "learner", *NATIONAL_READERS))]
Admin = Annotated[Principal, Depends(require("admin"))]
AgencyOrAdmin = Annotated[Principal, Depends(require("agency", "admin"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]


def ledger_of(rt: ServiceRuntime) -> Ledger:
    ledger: Ledger = rt.state["ledger"]
    return ledger


def four_eyes(rt: ServiceRuntime) -> FourEyes:
    return four_eyes_of(rt)


def ctx_for(principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


def hidden(account_id: uuid.UUID) -> WalletNotFound:
    """The one answer for an account that is missing or outside the caller's scope."""
    return WalletNotFound(f"no wallet for account {account_id}")


async def authorize_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> None:
    """Refuse, as if the account did not exist, an account outside the caller's scope."""
    if principal.role == "learner" and principal.account_id != account_id:
        raise hidden(account_id)
    if principal.role == "agency" and (
        await store.agency_of(session, account_id) != principal.agency_id
    ):
        raise hidden(account_id)
