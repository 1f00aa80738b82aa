"""The one base of every service's domain errors, answered by one exception handler.

A domain error carries a ``kind`` that decides the HTTP status (``bad_request`` 400 for an
input that cannot be read, ``not_found`` 404, ``forbidden`` 403, ``conflict`` 409,
``invalid`` or ``unprocessable`` 422, ``internal`` 500), a stable ``code`` clients may
branch on, a human ``detail`` and, when one input is at fault, its ``field``. Routes raise
them (or let handlers raise them) without catching:
:func:`shared.problems.install_problem_handlers` turns each into an RFC 9457 document.
"""

from __future__ import annotations

from typing import Any

STATUS_OF_KIND = {
    "bad_request": 400,
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "invalid": 422,
    "unprocessable": 422,
    "internal": 500,
}


class DomainError(Exception):
    """A rule refused the request. Subclasses set ``kind`` and ``code``."""

    kind: Any = "conflict"
    code: Any = "domain_error"
    field: Any = None

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        kind: str | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        if field is not None:
            self.field = field
        self.extra = extra or {}

    def problem_kind(self) -> str:
        return str(self.kind)

    def problem_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"code": self.code, **getattr(self, "extra", {})}
        if self.field:
            extra["errors"] = [{"field": self.field, "message": self.problem_detail()}]
        return extra

    def problem_detail(self) -> str:
        return str(getattr(self, "detail", None) or self)


class NotFoundError(DomainError):
    kind = "not_found"


class ForbiddenError(DomainError):
    kind = "forbidden"


class ConflictError(DomainError):
    kind = "conflict"


class InvalidError(DomainError):
    kind = "invalid"
