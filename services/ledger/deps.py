"""The ledger's typed dependencies: the runtime, the components its setup builds, the roles
each kind of route admits, the scope rule for accounts, the context of a request and the
idempotent unit of work of a request that writes.

Scope: a learner reads only their own account and an agency only the accounts it manages;
anything else answers exactly as an account that does not exist (404 ``wallet_not_found``,
"no wallet for account <id>"), so an answer never tells whether another agency's account
exists. National roles (``auditor``, ``admin``, ``finance``) read every account. ``qa``
neither reads accounts nor writes to the ledger; a ``funder`` reads no account, grants
top-ups from its own budget and reads its own statement (a funder outside the caller's scope
answers as one that does not exist, 404 ``funder_not_found``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import WalletNotFound
from services.ledger.handlers import Ledger
from services.ledger.handlers.allocation import Waker
from services.ledger.handlers.group import GroupCommitter
from services.ledger.store import projections
from shared.approvals import FourEyes
from shared.auth import Principal, Role, require
from shared.clock import Clock
from shared.idempotency import Effect, run_idempotent
from shared.outbox import EventContext
from shared.service import ServiceRuntime, components_of, runtime_of


@dataclass(frozen=True)
class LedgerComponents:
    """What the ledger's setup builds: its use cases, their clock, its four-eyes proposals
    and the waker of the allocation worker; ``committer`` decides the commands that arrive
    together in one transaction (group commit)."""

    ledger: Ledger
    clock: Clock
    four_eyes: FourEyes
    waker: Waker
    committer: GroupCommitter


NATIONAL_READERS: tuple[Role, ...] = ("auditor", "admin", "finance")

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("ledger"))]


async def components(rt: Runtime) -> LedgerComponents:
    return components_of(rt, LedgerComponents)


Components = Annotated[LedgerComponents, Depends(components)]

Reader = Annotated[Principal, Depends(require("agency", "learner", *NATIONAL_READERS))]
AgencyOrNational = Annotated[Principal, Depends(require("agency", *NATIONAL_READERS))]
Admin = Annotated[Principal, Depends(require("admin"))]
AgencyOrAdmin = Annotated[Principal, Depends(require("agency", "admin"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]
# the monitoring statistics: national roles the country, an agency the accounts it manages
StatisticsReader = Annotated[Principal, Depends(require("agency", "auditor", "admin"))]
FunderOrAdmin = Annotated[Principal, Depends(require("funder", "admin"))]
FunderOrNational = Annotated[Principal, Depends(require("funder", *NATIONAL_READERS))]


def ctx_for(principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


def hidden(account_id: uuid.UUID) -> WalletNotFound:
    """The one answer for an account that is missing or outside the caller's scope."""
    return WalletNotFound(f"no wallet for account {account_id}")


async def authorize_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> None:
    """Refuse, as if the account did not exist, an account outside the caller's scope."""
    (refusal,) = await outside_scope(session, [(principal, account_id)])
    if refusal is not None:
        raise refusal


async def outside_scope(
    session: AsyncSession, asks: Sequence[tuple[Principal, uuid.UUID]]
) -> list[WalletNotFound | None]:
    """:func:`authorize_account` of many (caller, account) pairs, the agencies read in one
    query: each pair's refusal, or None."""
    managed = await projections.agencies_of(
        session, sorted({account for who, account in asks if who.role == "agency"})
    )
    refusals: list[WalletNotFound | None] = []
    for who, account in asks:
        mine = (who.role != "learner" or who.account_id == account) and (
            who.role != "agency" or managed.get(account) == who.agency_id
        )
        refusals.append(None if mine else hidden(account))
    return refusals


def agency_scope(principal: Principal) -> str | None:
    """The agency whose accounts a national report is limited to (None: the country)."""
    return principal.agency_id if principal.role == "agency" else None


async def idempotent(
    rt: ServiceRuntime,
    request: Request,
    principal: Principal,
    body: BaseModel,
    effect: Effect,
    *,
    required: bool = False,
) -> Response:
    """``effect`` in one unit of work, at most once per caller and ``Idempotency-Key``
    (``required``: refused with 428 without one, for every request that moves money)."""
    return await run_idempotent(rt, request, principal, body, effect, required=required)
