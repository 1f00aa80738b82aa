"""The catalogue's domain errors: one class whose ``kind`` decides the HTTP status and whose
``code`` clients branch on; the kernel's exception handler answers them (routes never
catch them)."""

from __future__ import annotations

from typing import Any, Literal

from shared.errors import DomainError

ErrorKind = Literal["conflict", "forbidden", "unprocessable", "not_found"]


class CatalogueError(DomainError):
    def __init__(self, kind: ErrorKind, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail, code=code, kind=kind, field=field)

    def problem_extra(self) -> dict[str, Any]:
        extra = super().problem_extra()
        if self.field:
            # the input at fault, typed by the error's code
            extra["errors"] = [{"field": self.field, "message": self.detail, "type": self.code}]
        return extra


def conflict(code: str, detail: str) -> CatalogueError:
    return CatalogueError("conflict", code, detail)


def forbidden(code: str, detail: str) -> CatalogueError:
    return CatalogueError("forbidden", code, detail)


def unprocessable(code: str, detail: str, field: str | None = None) -> CatalogueError:
    return CatalogueError("unprocessable", code, detail, field)
