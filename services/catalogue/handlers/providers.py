"""Registering providers and the agency's quality-assurance decisions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.commands import Accredit, RegisterProvider, Suspend
from services.catalogue.domain import providers as domain
from services.catalogue.store import providers as store
from shared.events.catalogue import (
    Payout,
    ProviderAccredited,
    ProviderRegistered,
    ProviderSuspended,
)
from shared.outbox import EventContext, Outbox


@dataclass(frozen=True)
class Registered:
    provider_id: uuid.UUID
    created: bool


async def register(
    session: AsyncSession,
    outbox: Outbox,
    cmd: RegisterProvider,
    agency_id: str,
    ctx: EventContext,
    now: datetime,
) -> Registered:
    domain.check_registration(cmd.quality_assurance.valid_until, now.date())
    provider_id = uuid.uuid4()
    inserted = await store.insert(
        session,
        {
            "provider_id": provider_id,
            "agency_id": agency_id,
            "name": cmd.name,
            "country": cmd.country,
            "registration_number": cmd.registration_number,
            "qa_scheme": cmd.quality_assurance.scheme,
            "qa_valid_until": cmd.quality_assurance.valid_until,
            "iban": cmd.payout.iban,
            "bic": cmd.payout.bic,
            "registered_at": now,
        },
    )
    if not inserted:
        existing = await store.id_by_registration(session, cmd.country, cmd.registration_number)
        assert existing is not None
        return Registered(existing, False)
    await outbox.add(
        session,
        [
            ProviderRegistered(
                provider_id=str(provider_id),
                agency_id=agency_id,
                name=cmd.name,
                country=cmd.country,
                registration_number=cmd.registration_number,
                qa_scheme=cmd.quality_assurance.scheme,
                qa_valid_until=cmd.quality_assurance.valid_until,
                payout=Payout(iban=cmd.payout.iban, bic=cmd.payout.bic, account_holder=cmd.name),
                status="registered",
                registered_at=now,
            )
        ],
        ctx,
    )
    return Registered(provider_id, True)


async def accredit(
    session: AsyncSession,
    outbox: Outbox,
    row: store.ProviderRow,
    cmd: Accredit,
    ctx: EventContext,
    today: date,
) -> None:
    qa = cmd.quality_assurance
    provider = domain.accredit(
        row.domain(), today, qa.scheme if qa else None, qa.valid_until if qa else None
    )
    await store.update(
        session,
        row.provider_id,
        status=provider.status,
        status_reason=cmd.reason,
        qa_scheme=provider.qa_scheme,
        qa_valid_until=provider.qa_valid_until,
    )
    await outbox.add(
        session,
        [
            ProviderAccredited(
                provider_id=str(row.provider_id),
                reason=cmd.reason,
                qa_scheme=provider.qa_scheme,
                qa_valid_until=provider.qa_valid_until,
            )
        ],
        ctx,
    )


async def suspend(
    session: AsyncSession, outbox: Outbox, row: store.ProviderRow, cmd: Suspend, ctx: EventContext
) -> None:
    provider = domain.suspend(row.domain())
    await store.update(session, row.provider_id, status=provider.status, status_reason=cmd.reason)
    await outbox.add(
        session, [ProviderSuspended(provider_id=str(row.provider_id), reason=cmd.reason)], ctx
    )
