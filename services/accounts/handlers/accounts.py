"""The accounts use cases: a command (and the account row the route loaded and locked) and a
:class:`Context` in; decide (:mod:`services.accounts.domain`), store
(:mod:`services.accounts.store`) and stage events, all inside the caller's transaction
(handlers never commit).

An :class:`Accounts` holds what every use case needs (the outbox, the rules, the clock); a
route, a consumer or the CLI builds one context per transaction with
:meth:`Accounts.context`. Who may ask is checked before a handler runs (see
:mod:`services.accounts.deps`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
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
from services.accounts.handlers.personal import (
    Keyring,
    encrypt_personal,
    new_key,
    personal_data,
)
from services.accounts.store import accounts as store
from services.accounts.store import keys
from services.accounts.store.accounts import AccountRow
from services.accounts.store.keys import WrappedKey
from shared import mail
from shared.clock import Clock
from shared.events.accounts import AccountOpened
from shared.outbox import EventContext, Outbox
from shared.settings import Settings
from shared.usecase import UseCaseContext


@dataclass(frozen=True)
class AccountsConfig:
    pepper: str
    keyring: Keyring
    min_age: int = 18
    max_age: int = 67

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountsConfig:
        return cls(
            pepper=settings.national_id_pepper,
            keyring=Keyring(settings.kek_ring()),
            min_age=settings.min_working_age,
            max_age=settings.max_working_age,
        )

    @property
    def working_age(self) -> WorkingAge:
        return WorkingAge(self.min_age, self.max_age)


@dataclass(frozen=True)
class Context(UseCaseContext[AccountsConfig]):
    """An accounts use case's context (see shared.usecase), able to open personal data."""

    async def personal(self, row: AccountRow) -> dict[str, Any] | None:
        """The account's personal data, need flags included (None once erased)."""
        return await personal_data(self.session, self.config.keyring, row)


@dataclass(frozen=True)
class Accounts:
    """What every use case needs: where events go, the rules, and the clock."""

    outbox: Outbox
    config: AccountsConfig
    clock: Clock = field(default_factory=Clock)

    def context(
        self, session: AsyncSession, events: EventContext, now: datetime | None = None
    ) -> Context:
        """The context of one use case in ``session``'s transaction, happening ``now``."""
        return Context(session, self.outbox, self.config, now or self.clock.now(), events)


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
    """An account ready to insert: its row (personal data sealed), wrapped key and event."""

    row: dict[str, Any]
    key: WrappedKey
    event: AccountOpened

    @property
    def account_id(self) -> uuid.UUID:
        return self.event.account_id

    @property
    def national_id_hash(self) -> str:
        nid_hash: str = self.row["national_id_hash"]
        return nid_hash


def prepare(cmd: OpenAccount, agency_id: str, config: AccountsConfig, now: datetime) -> NewAccount:
    """Decide (working age on ``now``'s date) and seal an account's personal data, need
    flags included; raises :class:`~services.accounts.domain.errors.OutsideWorkingAge`."""
    account_id = uuid.uuid4()
    account, event = domain.open_account(account_id, cmd, agency_id, now, config.working_age)
    key = new_key()
    sealed = {
        **cmd.personal.model_dump(mode="json"),
        "birth_date": cmd.birth_date.isoformat(),
        "need_flags": list(account.need_flags),
    }
    nonce, blob = encrypt_personal(key, account_id, sealed)
    row = {
        "account_id": account_id,
        "national_id_hash": national_id_hash(cmd.national_id, config.pepper),
        "agency_id": agency_id,
        "country": cmd.country,
        "region": cmd.region,
        "qualification_level": account.qualification_level,
        "employment_status": account.employment_status,
        "need_tier": account.need_tier,
        "employer_id": account.employer_id,
        "personal_nonce": nonce,
        "personal_ciphertext": blob,
        # the year alone, for the statistics' age bands (gone at erasure with the region)
        "birth_year": cmd.birth_date.year,
        "opened_at": now,
    }
    return NewAccount(row, config.keyring.wrap(account_id, key), event)


async def open_account(cmd: OpenAccount, agency_id: str, ctx: Context) -> uuid.UUID:
    """Open an account; for a person who has one already, refuse as much as ``agency_id``
    may know (:func:`domain.already_open`)."""
    opened = await insert_new(prepare(cmd, agency_id, ctx.config, ctx.now), ctx)
    if not opened.created:
        raise domain.already_open(opened.account_id, opened.agency_id, agency_id)
    return opened.account_id


async def insert_new(new: NewAccount, ctx: Context) -> Opened:
    """Store a prepared account, or name the existing one for this national id."""
    if not await store.insert_account(ctx.session, new.row, new.key):
        existing = await store.account_id_by_hash(ctx.session, new.national_id_hash)
        assert existing is not None
        return Opened(existing[0], False, existing[1])
    await ctx.emit(new.event)
    return Opened(new.account_id, True, new.event.agency_id)


async def open_many(accounts: list[NewAccount], ctx: Context) -> dict[str, Opened]:
    """Open many accounts in a few statements (bulk onboarding): by national id hash, the
    account opened, or the one that already existed for that person (created=False). Their
    events are bulk: the relay publishes the service's other events first.
    The accounts must have distinct national ids."""
    inserted = await store.insert_accounts(ctx.session, [a.row for a in accounts])
    new = [a for a in accounts if a.account_id in inserted]
    await keys.insert_keys(ctx.session, [(a.account_id, a.key) for a in new])
    await ctx.emit(*(a.event for a in new), bulk=True)
    result = {a.national_id_hash: Opened(a.account_id, True, a.event.agency_id) for a in new}
    others = [a.national_id_hash for a in accounts if a.account_id not in inserted]
    for nid_hash, (account_id, agency) in (
        await store.account_ids_by_hash(ctx.session, others)
    ).items():
        result[nid_hash] = Opened(account_id, False, agency)
    return result


async def update_profile(row: AccountRow, cmd: UpdateProfile, ctx: Context) -> Account:
    """Change the need profile. New need flags are sealed with the personal data (an erased
    account keeps only the tier they give); the event carries the tier."""
    personal = await ctx.personal(row)
    account, events = domain.update_profile(row.domain((personal or {}).get("need_flags", ())), cmd)
    if not events:
        return account
    await store.update_profile(ctx.session, account)
    if personal is not None and cmd.need_flags is not None:
        key = await _data_key(row, ctx)
        nonce, blob = encrypt_personal(
            key, row.account_id, {**personal, "need_flags": list(account.need_flags)}
        )
        await store.update_personal(ctx.session, row.account_id, nonce, blob)
    await ctx.emit(*events)
    return account


async def _data_key(row: AccountRow, ctx: Context) -> bytes:
    wrapped = await keys.wrapped_key(ctx.session, row.account_id)
    assert wrapped is not None  # personal data are present, so is their key
    return ctx.config.keyring.unwrap(row.account_id, wrapped)


async def change_status(
    row: AccountRow, action: Action, cmd: LifecycleChange, ctx: Context
) -> Account:
    """A lifecycle move; its reason code goes out with the event, its note stays here."""
    account, event = domain.change_status(row.domain(), action, cmd.reason_code)
    await store.update(
        ctx.session,
        row.account_id,
        status=account.status,
        status_reason_code=cmd.reason_code,
        status_note=None if account.erased else cmd.note,
        **({"closed_at": ctx.now} if action == "close" else {}),
    )
    await ctx.emit(event)
    return account


async def transfer(row: AccountRow, cmd: TransferAccount, ctx: Context) -> Account:
    account, event = domain.transfer(row.domain(), cmd.to_agency_id)
    await store.update(ctx.session, row.account_id, agency_id=account.agency_id)
    await ctx.emit(event)
    return account


async def erase(row: AccountRow, ctx: Context) -> bool:
    """Destroy the account's data key and everything personal kept beside it (the messages
    to them included); False when it was already erased."""
    _, events = domain.erase_personal_data(row.domain())
    if not events:
        return False
    await keys.delete_key(ctx.session, row.account_id)
    await store.mark_erased(ctx.session, row.account_id)
    # the messages sent or waiting: their address and texts go too
    await mail.erase_person(ctx.session, "accounts", str(row.account_id))
    await ctx.emit(*events)
    return True
