"""Catalogue use cases: a command and a :class:`Context` in, events staged in the outbox.

Each handler loads what it needs, decides with the domain rules, writes through the store
and stages its events, all inside the caller's transaction (handlers never commit). Who
may ask is checked before a handler runs (see :mod:`services.catalogue.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain.credentials.signing import IssuerKey
from shared.events import Event
from shared.outbox import EventContext, Outbox


@dataclass(frozen=True)
class CatalogueConfig:
    currency: str
    issuer_key: IssuerKey
    issuer_name: str = "ILA micro-credential registry"


@dataclass(frozen=True)
class Context:
    """What one use case runs in: the caller's transaction, the instant it happens at, the
    outbox its events go to, the service's configuration and who and what caused it."""

    session: AsyncSession
    outbox: Outbox
    config: CatalogueConfig
    now: datetime
    events: EventContext

    @property
    def actor(self) -> str:
        return self.events.actor or ""

    async def emit(self, *events: Event) -> None:
        """Stage ``events`` in the caller's transaction."""
        await self.outbox.add(self.session, events, self.events)
