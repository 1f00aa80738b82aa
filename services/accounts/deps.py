"""What the accounts routes depend on: the runtime, the components its setup builds, the
roles each kind of route admits, the scope rule for accounts and the event context.

Scope: an agency acts on and reads the accounts it manages; for an account another agency
manages it gets the same 404 as for a missing account. A learner reads their own account
(403 for any other id, existing or not); auditors read every account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.handlers.accounts import Accounts, AccountsConfig, Context
from services.accounts.messages import Messenger
from services.accounts.store import accounts as store
from services.accounts.store.accounts import AccountRow
from shared.auth import Principal, require
from shared.clock import Clock
from shared.outbox import EventContext, Outbox
from shared.problems import Forbidden, NotFound
from shared.service import ServiceRuntime, components_of, runtime_of
from shared.settings import Settings


@dataclass(frozen=True)
class AccountsComponents:
    """What the accounts service's setup builds."""

    config: AccountsConfig
    clock: Clock
    outbox: Outbox
    accounts: Accounts
    messenger: Messenger

    @classmethod
    def build(
        cls, settings: Settings, outbox: Outbox, clock: Clock | None = None
    ) -> AccountsComponents:
        config = AccountsConfig.from_settings(settings)
        clock = clock or Clock()
        return cls(
            config,
            clock,
            outbox,
            Accounts(outbox, config, clock),
            Messenger.build(settings, config.keyring),
        )

    def context(self, session: AsyncSession, events: EventContext) -> Context:
        """The context of one use case in ``session``'s transaction, happening now."""
        return self.accounts.context(session, events)


Runtime = Annotated[ServiceRuntime, Depends(runtime_of("accounts"))]


async def _components(rt: Runtime) -> AccountsComponents:
    return components_of(rt, AccountsComponents)


Components = Annotated[AccountsComponents, Depends(_components)]

Agency = Annotated[Principal, Depends(require("agency"))]
AgencyOrAuditor = Annotated[Principal, Depends(require("agency", "auditor"))]
Reader = Annotated[Principal, Depends(require("agency", "learner", "auditor"))]
Learner = Annotated[Principal, Depends(require("learner"))]
# the monitoring statistics: national roles the country, an agency the accounts it manages
StatisticsReader = Annotated[Principal, Depends(require("agency", "auditor", "admin"))]


LEARNER_READS_OWN = "a learner may read only their own account"


def ctx_for(principal: Principal) -> EventContext:
    return EventContext.for_request(principal.actor)


def agency_scope(principal: Principal) -> str | None:
    """The agency a statistic is limited to (None: the country)."""
    return (principal.agency_id or "") if principal.role == "agency" else None


def agency_of(principal: Principal) -> str:
    """The agency an agency token acts for."""
    return principal.agency_id or ""


def not_found(account_id: uuid.UUID) -> NotFound:
    """One answer for a missing account and for one another agency manages."""
    return NotFound(f"no account {account_id}")


def authorize_read(
    principal: Principal, account_id: uuid.UUID, row: AccountRow | None
) -> AccountRow:
    """The account, if ``principal`` may read it (``row`` is None when it does not exist)."""
    if row is None:
        if principal.role == "learner":
            raise Forbidden(LEARNER_READS_OWN)
        raise not_found(account_id)
    if principal.role == "agency" and principal.agency_id != row.agency_id:
        raise not_found(account_id)
    if principal.role == "learner" and principal.account_id != row.account_id:
        raise Forbidden(LEARNER_READS_OWN)
    return row


async def load_managed(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> AccountRow:
    """The account, locked for the change, if the calling agency manages it."""
    row = await store.get(session, account_id, lock=True)
    if row is None or principal.agency_id != row.agency_id:
        raise not_found(account_id)
    return row
