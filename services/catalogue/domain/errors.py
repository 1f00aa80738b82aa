"""Typed domain errors; the API maps each ``kind`` to one HTTP status in one place."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["conflict", "forbidden", "unprocessable", "not_found"]


class CatalogueError(Exception):
    def __init__(self, kind: ErrorKind, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.code = code
        self.detail = detail
        self.field = field


def conflict(code: str, detail: str) -> CatalogueError:
    return CatalogueError("conflict", code, detail)


def forbidden(code: str, detail: str) -> CatalogueError:
    return CatalogueError("forbidden", code, detail)


def unprocessable(code: str, detail: str, field: str | None = None) -> CatalogueError:
    return CatalogueError("unprocessable", code, detail, field)
