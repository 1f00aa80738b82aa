"""Catalogue use cases: load, decide (domain), store and stage events, all inside the
caller's transaction (handlers never commit)."""

from __future__ import annotations

from dataclasses import dataclass

from services.catalogue.domain.credentials.signing import IssuerKey


@dataclass(frozen=True)
class CatalogueConfig:
    currency: str
    issuer_key: IssuerKey
    issuer_name: str = "ILA micro-credential registry"
