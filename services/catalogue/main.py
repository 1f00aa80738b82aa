"""The catalogue service definition (providers, courses, the public registry, credentials).

Its configuration (currency, the credential issuer's key) is built in ``setup`` when the
app starts, never at import time; it consumes ``payments.CompletionCertified`` to issue
micro-credentials, and keeps two read models (see :mod:`services.catalogue.projections`):
the agency managing each account (``accounts.AccountOpened`` / ``AccountTransferred``) and
the enrolments holding a seat in each session (``payments.EnrolmentConfirmed`` /
``EnrolmentCancelled`` / ``EnrolmentRejected``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue import projections
from services.catalogue.api import build_router
from services.catalogue.domain.credentials.signing import derive_issuer_key
from services.catalogue.handlers import CatalogueConfig
from services.catalogue.handlers import credentials as credential_handlers
from shared.events import Envelope
from shared.events.accounts import AccountOpened, AccountTransferred
from shared.events.payments import (
    CompletionCertified,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentRejected,
)
from shared.outbox import EventContext
from shared.service import ServiceDefinition, ServiceRuntime


def _setup(rt: ServiceRuntime) -> None:
    config = CatalogueConfig(
        currency=rt.settings.currency,
        issuer_key=derive_issuer_key(rt.settings.credential_key_seed),
    )
    rt.state["config"] = config

    @rt.consumer.on(CompletionCertified)
    async def on_completion(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        from datetime import UTC, datetime

        await credential_handlers.issue(
            session,
            rt.outbox,
            config,
            payload,
            EventContext.caused_by(envelope, actor="service:catalogue"),
            datetime.now(UTC),
        )

    async def account_event(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        await projections.apply_account_event(session, payload)

    for account_kind in (AccountOpened, AccountTransferred):
        rt.consumer.on(account_kind)(account_event)

    async def enrolment_event(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        await projections.apply_enrolment_event(session, payload)

    for enrolment_kind in (EnrolmentConfirmed, EnrolmentCancelled, EnrolmentRejected):
        rt.consumer.on(enrolment_kind)(enrolment_event)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="catalogue", title="ILA catalogue", router=build_router(), setup=_setup
    )
