"""The catalogue service definition (providers, courses, the public registry, credentials).

Its configuration (currency, the credential issuer's key) is built in ``setup`` when the
app starts, never at import time; it consumes ``payments.CompletionCertified`` to issue
micro-credentials.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.api import build_router
from services.catalogue.credentials.signing import derive_issuer_key
from services.catalogue.handlers import CatalogueConfig
from services.catalogue.handlers import credentials as credential_handlers
from shared.events import Envelope
from shared.events.payments import CompletionCertified
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


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="catalogue", title="ILA catalogue", router=build_router(), setup=_setup
    )
