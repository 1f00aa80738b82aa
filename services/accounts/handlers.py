"""Accounts use cases: load, decide, store and stage events, inside the caller's transaction."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts import domain, store
from services.accounts.commands import (
    LifecycleChange,
    OpenAccount,
    PersonalData,
    TransferAccount,
    UpdateProfile,
)
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
    NeedProfile,
    PersonalDataErased,
)
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


@dataclass(frozen=True)
class Opened:
    account_id: uuid.UUID
    created: bool
    agency_id: str  # the agency managing the account (for an existing one: maybe another)

    def named_to(self, agency_id: str) -> bool:
        """May the account id be told to ``agency_id``? Only to the agency managing it: to
        any other, the id of a person it does not manage is not its to know."""
        return self.agency_id == agency_id


def encrypt_personal(
    key: bytes, account_id: uuid.UUID, personal: PersonalData, birth: date
) -> tuple[bytes, bytes]:
    nonce = os.urandom(12)
    plain = json.dumps({**personal.model_dump(mode="json"), "birth_date": birth.isoformat()})
    return nonce, AESGCM(key).encrypt(nonce, plain.encode(), account_id.bytes)


def decrypt_personal(
    key: bytes, account_id: uuid.UUID, nonce: bytes, blob: bytes
) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(AESGCM(key).decrypt(nonce, blob, account_id.bytes))
    return data


@dataclass(frozen=True)
class NewAccount:
    """An account ready to insert: its row (personal data encrypted), key and event."""

    row: dict[str, Any]
    key: bytes
    event: AccountOpened

    @property
    def account_id(self) -> uuid.UUID:
        account_id: uuid.UUID = self.row["account_id"]
        return account_id

    @property
    def national_id_hash(self) -> str:
        nid_hash: str = self.row["national_id_hash"]
        return nid_hash


def new_account(
    config: AccountsConfig,
    cmd: OpenAccount,
    agency_id: str,
    now: datetime | None = None,
    today: date | None = None,
) -> NewAccount:
    """Decide (working age) and prepare an account; raises :class:`domain.AccountError`."""
    now = now or datetime.now(UTC)
    domain.check_working_age(cmd.birth_date, today or now.date(), config.min_age, config.max_age)
    account_id = uuid.uuid4()
    key = AESGCM.generate_key(bit_length=256)
    nonce, blob = encrypt_personal(key, account_id, cmd.personal, cmd.birth_date)
    row = {
        "account_id": account_id,
        "national_id_hash": domain.national_id_hash(cmd.national_id, config.pepper),
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
    event = AccountOpened(
        account_id=account_id,
        agency_id=agency_id,
        country=cmd.country,
        region=cmd.region,
        birth_year=cmd.birth_date.year,
        profile=NeedProfile(
            qualification_level=cmd.qualification_level,
            employment_status=cmd.employment_status,
            need_flags=list(cmd.need_flags),
        ),
        opened_at=now,
    )
    return NewAccount(row, key, event)


async def open_account(
    session: AsyncSession,
    outbox: Outbox,
    config: AccountsConfig,
    cmd: OpenAccount,
    agency_id: str,
    ctx: EventContext,
    today: date | None = None,
) -> Opened:
    """Open an account, or name the existing one for this national id (created=False)."""
    return await insert_new(session, outbox, new_account(config, cmd, agency_id, today=today), ctx)


async def insert_new(
    session: AsyncSession, outbox: Outbox, new: NewAccount, ctx: EventContext
) -> Opened:
    """Store a prepared account, or name the existing one for this national id."""
    if not await store.insert_account(session, new.row, new.key):
        existing = await store.account_id_by_hash(session, new.national_id_hash)
        assert existing is not None
        return Opened(existing[0], False, existing[1])
    await outbox.add(session, [new.event], ctx)
    return Opened(new.account_id, True, new.event.agency_id)


async def open_accounts(
    session: AsyncSession, outbox: Outbox, accounts: list[NewAccount], ctx: EventContext
) -> dict[str, Opened]:
    """Open many accounts in a few statements (bulk onboarding): by national id hash, the
    account opened, or the one that already existed for that person (created=False).
    The accounts must have distinct national ids."""
    inserted = await store.insert_accounts(session, [a.row for a in accounts])
    new = [a for a in accounts if a.account_id in inserted]
    await store.insert_keys(session, [(a.account_id, a.key) for a in new])
    await outbox.add(session, [a.event for a in new], ctx)
    result = {a.national_id_hash: Opened(a.account_id, True, a.event.agency_id) for a in new}
    others = [a.national_id_hash for a in accounts if a.account_id not in inserted]
    for nid_hash, (account_id, agency) in (
        await store.account_ids_by_hash(session, others)
    ).items():
        result[nid_hash] = Opened(account_id, False, agency)
    return result


async def update_profile(
    session: AsyncSession,
    outbox: Outbox,
    row: store.AccountRow,
    cmd: UpdateProfile,
    ctx: EventContext,
) -> None:
    domain.update_profile(row.domain())
    changes = cmd.model_dump(exclude_none=True)
    if "need_flags" in changes:
        changes["need_flags"] = sorted(set(changes["need_flags"]))
    if not changes:
        return
    await store.update(session, row.account_id, **changes)
    profile = NeedProfile(
        qualification_level=changes.get("qualification_level", row.qualification_level),
        employment_status=changes.get("employment_status", row.employment_status),
        need_flags=changes.get("need_flags", row.need_flags),
    )
    await outbox.add(
        session, [AccountProfileUpdated(account_id=row.account_id, profile=profile)], ctx
    )


async def change_status(
    session: AsyncSession,
    outbox: Outbox,
    row: store.AccountRow,
    action: str,
    cmd: LifecycleChange,
    ctx: EventContext,
) -> domain.Account:
    account = row.domain()
    event: AccountSuspended | AccountReinstated | AccountClosed
    if action == "suspend":
        account = domain.suspend(account)
        event = AccountSuspended(account_id=row.account_id, reason=cmd.reason)
    elif action == "reinstate":
        account = domain.reinstate(account)
        event = AccountReinstated(account_id=row.account_id, reason=cmd.reason)
    else:
        account = domain.close(account)
        event = AccountClosed(account_id=row.account_id, reason=cmd.reason)
    await store.update(session, row.account_id, status=account.status, status_reason=cmd.reason)
    await outbox.add(session, [event], ctx)
    return account


async def transfer(
    session: AsyncSession,
    outbox: Outbox,
    row: store.AccountRow,
    cmd: TransferAccount,
    ctx: EventContext,
) -> domain.Account:
    account = domain.transfer(row.domain(), cmd.to_agency_id)
    await store.update(session, row.account_id, agency_id=account.agency_id)
    await outbox.add(
        session,
        [
            AccountTransferred(
                account_id=row.account_id,
                from_agency_id=row.agency_id,
                to_agency_id=cmd.to_agency_id,
            )
        ],
        ctx,
    )
    return account


async def erase(
    session: AsyncSession, outbox: Outbox, row: store.AccountRow, ctx: EventContext
) -> bool:
    """Destroy the account's data key; False when it was already erased."""
    if row.erased_at is not None:
        return False
    await store.erase_personal_data(session, row.account_id)
    await outbox.add(session, [PersonalDataErased(account_id=row.account_id)], ctx)
    return True


async def personal_data(session: AsyncSession, row: store.AccountRow) -> dict[str, Any] | None:
    if row.personal_ciphertext is None or row.personal_nonce is None:
        return None
    key = await store.data_key(session, row.account_id)
    if key is None:
        return None
    return decrypt_personal(key, row.account_id, row.personal_nonce, row.personal_ciphertext)
