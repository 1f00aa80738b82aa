"""Provider endpoints: registration by an agency and the quality-assurance decisions.

Who may do what:

- register: an agency (the provider is then "registered by" that agency);
- read: the registering agency, the provider itself, and national roles (``qa``, auditor,
  admin); another agency or provider gets the 404 a missing provider gets;
- accredit and suspend: the registering agency or ``qa`` (the national quality-assurance
  authority); another agency gets the same 404 as for a missing provider.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.commands import Accredit, RegisterProvider, Suspend
from services.catalogue.deps import (
    Agency,
    Assessor,
    CatalogueComponents,
    Components,
    Reader,
    Runtime,
    ctx_for,
    manages_provider,
    reads_provider,
)
from services.catalogue.domain import providers as rules
from services.catalogue.handlers import providers as handlers
from services.catalogue.store import providers as store
from shared.auth import Principal
from shared.idempotency import run_idempotent
from shared.links import follow
from shared.problems import Conflict, NotFound

router = APIRouter(prefix="/v1/providers", tags=["providers"])
PROVIDER = "/v1/providers/{provider_id}"


class QualityAssurancePublic(BaseModel):
    scheme: str
    valid_until: date


class PayoutPublic(BaseModel):
    iban: str
    bic: str


class ProviderPublic(BaseModel):
    provider_id: uuid.UUID
    agency_id: str
    name: str
    country: str
    registration_number: str
    quality_assurance: QualityAssurancePublic
    payout: PayoutPublic
    status: str
    status_reason: str | None = Field(description="the last decision's reason code")
    status_note: str | None = Field(description="the last decision's free-text note")
    eligible: bool
    ineligibility: str | None
    registered_at: datetime
    updated_at: datetime


def public(row: store.ProviderRow, today: date) -> ProviderPublic:
    """The provider as the API shows it, its eligibility as of ``today``."""
    return ProviderPublic(
        provider_id=row.provider_id,
        agency_id=row.agency_id,
        name=row.name,
        country=row.country,
        registration_number=row.registration_number,
        quality_assurance=QualityAssurancePublic(
            scheme=row.qa_scheme, valid_until=row.qa_valid_until
        ),
        payout=PayoutPublic(iban=row.iban, bic=row.bic),
        status=row.status,
        status_reason=row.status_reason,
        status_note=row.status_note,
        eligible=rules.is_eligible(row.domain(), today),
        ineligibility=rules.ineligibility(row.domain(), today),
        registered_at=row.registered_at,
        updated_at=row.updated_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=ProviderPublic,
    responses={
        409: {"description": "a provider with this registration number exists"},
        **follow(201, f"GET {PROVIDER}", f"POST {PROVIDER}/accredit", f"POST {PROVIDER}/suspend"),
    },
)
async def register_provider(
    body: RegisterProvider, request: Request, rt: Runtime, parts: Components, principal: Agency
) -> Response:
    """Register a training provider (it is eligible once accredited, while its QA is valid)."""

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        ctx = parts.context(session, ctx_for(principal))
        registered = await handlers.register(body, principal.agency_id or "", ctx)
        if not registered.created:
            existing = await store.get(session, registered.provider_id)
            assert existing is not None
            if existing.agency_id == principal.agency_id:
                raise Conflict(
                    "a provider with this registration number is registered: "
                    f"{registered.provider_id}",
                    extra={"provider_id": str(registered.provider_id)},
                )
            # registered by another agency: say so without naming it or its agency
            raise Conflict(
                "a provider with this registration number is registered by another agency",
                extra={"code": "registered_elsewhere"},
            )
        row = await store.get(session, registered.provider_id)
        assert row is not None
        location = f"/v1/providers/{registered.provider_id}"
        return 201, public(row, ctx.now.date()).model_dump(mode="json"), {"Location": location}

    return await run_idempotent(rt, request, principal, body, effect)


@router.get("/{provider_id}", response_model=ProviderPublic)
async def get_provider(
    provider_id: uuid.UUID, rt: Runtime, parts: Components, principal: Reader
) -> ProviderPublic:
    """A provider: for the agency that registered it, the provider itself, ``qa``, auditors
    and admins (anyone else: 404, as for a missing provider)."""
    async with rt.sessions() as session:
        row = await store.get(session, provider_id)
    if row is None or not reads_provider(principal, provider_id, row.agency_id):
        raise NotFound(f"no provider {provider_id}")
    return public(row, parts.clock.now().date())


async def _decide(
    provider_id: uuid.UUID,
    body: Accredit | Suspend,
    rt: Runtime,
    parts: CatalogueComponents,
    principal: Principal,
) -> ProviderPublic:
    async with rt.uow() as session:
        row = await store.get(session, provider_id, lock=True)
        if row is None or not manages_provider(principal, row.agency_id):
            raise NotFound(f"no provider {provider_id}")
        ctx = parts.context(session, ctx_for(principal))
        if isinstance(body, Accredit):
            await handlers.accredit(row, body, ctx)
        else:
            await handlers.suspend(row, body, ctx)
        updated = await store.get(session, provider_id)
        assert updated is not None
        return public(updated, ctx.now.date())


@router.post("/{provider_id}/accredit", response_model=ProviderPublic)
async def accredit(
    provider_id: uuid.UUID, body: Accredit, rt: Runtime, parts: Components, principal: Assessor
) -> ProviderPublic:
    """Accredit, re-accredit after a suspension, or renew the quality assurance: the agency
    that registered the provider, or ``qa``."""
    return await _decide(provider_id, body, rt, parts, principal)


@router.post("/{provider_id}/suspend", response_model=ProviderPublic)
async def suspend(
    provider_id: uuid.UUID, body: Suspend, rt: Runtime, parts: Components, principal: Assessor
) -> ProviderPublic:
    """Suspend: its courses leave the registry and take no new enrolments. The agency that
    registered the provider, or ``qa``."""
    return await _decide(provider_id, body, rt, parts, principal)
