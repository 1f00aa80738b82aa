"""The accounts use cases: load, decide, store and stage events, inside the caller's
transaction (handlers never commit).

An :class:`Accounts` holds what they need (the outbox, the configuration, the clock); each
use case takes the session, the account row the route loaded and locked (or the command to
open one) and the event context.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.commands import (
    LifecycleChange,
    OpenAccount,
    TransferAccount,
    UpdateProfile,
)
from services.accounts.domain import accounts as domain
from services.accounts.domain.accounts import Account, Action, WorkingAge
from services.accounts.domain.identity import national_id_hash
from services.accounts.handlers.personal import encrypt_personal, new_key
from services.accounts.store import accounts as store
from services.accounts.store import keys
from services.accounts.store.accounts import AccountRow
from shared.clock import Clock
from shared.events.accounts import AccountOpened
from shared.outbox import EventContext, Outbox
from shared.settings import Settings


@dataclass(frozen=True)
class AccountsConfig:
    pepper: str
    min_age: int = 18
    max_age: int = 67

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountsConfig:
        return cls(
            pepper=settings.national_id_pepper,
            min_age=settings.min_working_age,
            max_age=settings.max_working_age,
        )

    @property
    def working_age(self) -> WorkingAge:
        return WorkingAge(self.min_age, self.max_age)


@dataclass(frozen=True)
class Opened:
    account_id: uuid.UUID
    created: bool
    agency_id: str  # the agency managing the account (for an existing one: maybe another)

    def named_to(self, agency_id: str) -> bool:
        """May the account id be told to ``agency_id``? (:func:`domain.may_name`)"""
        return domain.may_name(self.agency_id, agency_id)


@dataclass(frozen=True)
class NewAccount:
    """An account ready to insert: its row (personal data encrypted), key and event."""

    row: dict[str, Any]
    key: bytes
    event: AccountOpened

    @property
    def account_id(self) -> uuid.UUID:
        return self.event.account_id

    @property
    def national_id_hash(self) -> str:
        nid_hash: str = self.row["national_id_hash"]
        return nid_hash


class Accounts:
    """The accounts service's use cases."""

    def __init__(self, outbox: Outbox, config: AccountsConfig, clock: Clock) -> None:
        self.outbox = outbox
        self.config = config
        self.clock = clock

    def prepare(self, cmd: OpenAccount, agency_id: str, now: datetime | None = None) -> NewAccount:
        """Decide (working age on ``now``'s date) and seal an account's personal data;
        raises :class:`~services.accounts.domain.errors.OutsideWorkingAge`."""
        now = now or self.clock.now()
        account_id = uuid.uuid4()
        _, event = domain.open_account(account_id, cmd, agency_id, now, self.config.working_age)
        key = new_key()
        nonce, blob = encrypt_personal(key, account_id, cmd.personal, cmd.birth_date)
        row = {
            "account_id": account_id,
            "national_id_hash": national_id_hash(cmd.national_id, self.config.pepper),
            "agency_id": agency_id,
            "birth_year": cmd.birth_date.year,
            "country": cmd.country,
            "region": cmd.region,
            "qualification_level": cmd.qualification_level,
            "employment_status": cmd.employment_status,
            "need_flags": list(cmd.need_flags),
            "personal_nonce": nonce,
            "personal_ciphertext": blob,
            "opened_at": now,
        }
        return NewAccount(row, key, event)

    async def open(
        self, session: AsyncSession, cmd: OpenAccount, agency_id: str, ctx: EventContext
    ) -> uuid.UUID:
        """Open an account; for a person who has one already, refuse as much as ``agency_id``
        may know (:func:`domain.already_open`)."""
        opened = await self.insert_new(session, self.prepare(cmd, agency_id), ctx)
        if not opened.created:
            raise domain.already_open(opened.account_id, opened.agency_id, agency_id)
        return opened.account_id

    async def insert_new(self, session: AsyncSession, new: NewAccount, ctx: EventContext) -> Opened:
        """Store a prepared account, or name the existing one for this national id."""
        if not await store.insert_account(session, new.row, new.key):
            existing = await store.account_id_by_hash(session, new.national_id_hash)
            assert existing is not None
            return Opened(existing[0], False, existing[1])
        await self.outbox.add(session, [new.event], ctx)
        return Opened(new.account_id, True, new.event.agency_id)

    async def open_many(
        self, session: AsyncSession, accounts: list[NewAccount], ctx: EventContext
    ) -> dict[str, Opened]:
        """Open many accounts in a few statements (bulk onboarding): by national id hash, the
        account opened, or the one that already existed for that person (created=False).
        The accounts must have distinct national ids."""
        inserted = await store.insert_accounts(session, [a.row for a in accounts])
        new = [a for a in accounts if a.account_id in inserted]
        await keys.insert_keys(session, [(a.account_id, a.key) for a in new])
        await self.outbox.add(session, [a.event for a in new], ctx)
        result = {a.national_id_hash: Opened(a.account_id, True, a.event.agency_id) for a in new}
        others = [a.national_id_hash for a in accounts if a.account_id not in inserted]
        for nid_hash, (account_id, agency) in (
            await store.account_ids_by_hash(session, others)
        ).items():
            result[nid_hash] = Opened(account_id, False, agency)
        return result

    async def update_profile(
        self, session: AsyncSession, row: AccountRow, cmd: UpdateProfile, ctx: EventContext
    ) -> Account:
        account, events = domain.update_profile(row.domain(), cmd)
        if events:
            await store.update_profile(session, account)
            await self.outbox.add(session, events, ctx)
        return account

    async def change_status(
        self,
        session: AsyncSession,
        row: AccountRow,
        action: Action,
        cmd: LifecycleChange,
        ctx: EventContext,
    ) -> Account:
        account, event = domain.change_status(row.domain(), action, cmd.reason)
        await store.update(session, row.account_id, status=account.status, status_reason=cmd.reason)
        await self.outbox.add(session, [event], ctx)
        return account

    async def transfer(
        self, session: AsyncSession, row: AccountRow, cmd: TransferAccount, ctx: EventContext
    ) -> Account:
        account, event = domain.transfer(row.domain(), cmd.to_agency_id)
        await store.update(session, row.account_id, agency_id=account.agency_id)
        await self.outbox.add(session, [event], ctx)
        return account

    async def erase(self, session: AsyncSession, row: AccountRow, ctx: EventContext) -> bool:
        """Destroy the account's data key; False when it was already erased."""
        _, events = domain.erase_personal_data(row.domain())
        if not events:
            return False
        await keys.delete_key(session, row.account_id)
        await store.mark_erased(session, row.account_id)
        await self.outbox.add(session, events, ctx)
        return True
