"""Typed domain errors; the API maps each ``kind`` to one HTTP status in one place."""

from __future__ import annotations

from typing import Literal

from shared.errors import DomainError

ErrorKind = Literal["conflict", "forbidden", "unprocessable", "not_found"]


class CatalogueError(DomainError):
    def __init__(self, kind: ErrorKind, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail, code=code, kind=kind, field=field)


def conflict(code: str, detail: str) -> CatalogueError:
    return CatalogueError("conflict", code, detail)


def forbidden(code: str, detail: str) -> CatalogueError:
    return CatalogueError("forbidden", code, detail)


def unprocessable(code: str, detail: str, field: str | None = None) -> CatalogueError:
    return CatalogueError("unprocessable", code, detail, field)
