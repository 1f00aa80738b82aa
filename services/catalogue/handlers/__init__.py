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
    # the key the seed derives: the keyring's first key (credentials issued before keys
    # had ids name it by its did:key)
    issuer_key: IssuerKey
    # wraps the private parts of the keyring's keys (derived from the same seed)
    wrapping_key: bytes = b""
    # where the catalogue is reached from outside: the issuer's id, its keys document and
    # its status lists are URLs under it
    public_url: str = "http://127.0.0.1:8003"
    issuer_name: str = "ILA micro-credential registry"

    @property
    def issuer_id(self) -> str:
        return f"{self.public_url}/v1/credentials/issuer"

    def status_list_url(self, list_id: int) -> str:
        return f"{self.public_url}/v1/credentials/status/{list_id}"

    def status_list_id(self, url: str) -> int | None:
        """The id of one of our lists from its URL; None for any other URL."""
        tail = url.removeprefix(f"{self.public_url}/v1/credentials/status/")
        return int(tail) if tail != url and tail.isdigit() and len(tail) < 10 else None


# what one catalogue use case runs in (see shared.usecase)
Context = UseCaseContext[CatalogueConfig]
