"""Registering providers and the agency's quality-assurance decisions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from services.catalogue.commands import Accredit, RegisterProvider, Suspend
from services.catalogue.domain import providers as domain
from services.catalogue.handlers import Context
from services.catalogue.store import providers as store
from shared.events.catalogue import (
    Payout,
    ProviderAccredited,
    ProviderRegistered,
    ProviderSuspended,
)


@dataclass(frozen=True)
class Registered:
    provider_id: uuid.UUID
    created: bool


async def register(cmd: RegisterProvider, agency_id: str, ctx: Context) -> Registered:
    """A provider registered by ``agency_id``; the one already registered under the same
    country and registration number when there is one (``created`` False, no event)."""
    domain.check_registration(cmd.quality_assurance.valid_until, ctx.now.date())
    provider_id = uuid.uuid4()
    inserted = await store.insert(
        ctx.session,
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
            "contact_email": cmd.contact_email,
            "registered_at": ctx.now,
        },
    )
    if not inserted:
        existing = await store.id_by_registration(ctx.session, cmd.country, cmd.registration_number)
        assert existing is not None
        return Registered(existing, False)
    await ctx.emit(
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
            registered_at=ctx.now,
        )
    )
    return Registered(provider_id, True)


async def _store_status(
    row: store.ProviderRow,
    provider: domain.Provider,
    cmd: Accredit | Suspend,
    ctx: Context,
    **fields: Any,
) -> None:
    """The provider's new status, with the reason and note of the decision (and ``fields``)."""
    await store.update(
        ctx.session,
        row.provider_id,
        status=provider.status,
        status_reason=cmd.reason_code,
        status_note=cmd.note,
        **fields,
    )


async def accredit(row: store.ProviderRow, cmd: Accredit, ctx: Context) -> None:
    """Accredit the (locked) provider, or renew its quality assurance."""
    qa = cmd.quality_assurance
    provider = domain.accredit(
        row.domain(), ctx.now.date(), qa.scheme if qa else None, qa.valid_until if qa else None
    )
    await _store_status(
        row,
        provider,
        cmd,
        ctx,
        qa_scheme=provider.qa_scheme,
        qa_valid_until=provider.qa_valid_until,
    )
    await ctx.emit(
        ProviderAccredited(
            provider_id=str(row.provider_id),
            reason_code=cmd.reason_code,
            qa_scheme=provider.qa_scheme,
            qa_valid_until=provider.qa_valid_until,
        )
    )


async def suspend(row: store.ProviderRow, cmd: Suspend, ctx: Context) -> None:
    """Suspend the (locked) provider."""
    provider = domain.suspend(row.domain())
    await _store_status(row, provider, cmd, ctx)
    await ctx.emit(ProviderSuspended(provider_id=str(row.provider_id), reason_code=cmd.reason_code))
