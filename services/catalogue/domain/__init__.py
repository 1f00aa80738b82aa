"""The catalogue's rules as pure functions: no I/O, no clock of their own (``today`` and
``now`` are passed in)."""

from services.catalogue.domain.errors import CatalogueError

__all__ = ["CatalogueError"]
