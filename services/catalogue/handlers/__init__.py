"""Catalogue use cases: a command and a :class:`Context` in, events staged in the outbox.

Each handler loads what it needs, decides with the domain rules, writes through the store
and stages its events, all inside the caller's transaction (handlers never commit). Who
may ask is checked before a handler runs (see :mod:`services.catalogue.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.catalogue.domain.credentials.signing import IssuerKey
from shared.usecase import UseCaseContext


@dataclass(frozen=True)
class CatalogueConfig:
    currency: str
    issuer_key: IssuerKey
    issuer_name: str = "ILA micro-credential registry"


# what one catalogue use case runs in (see shared.usecase)
Context = UseCaseContext[CatalogueConfig]
