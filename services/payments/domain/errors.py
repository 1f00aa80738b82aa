"""The refusals of payments' rules: a :class:`PaymentsError` with a stable ``code``; its
``kind`` says how the API answers (answered by the one domain-error handler)."""

from __future__ import annotations

from typing import Literal

from shared.errors import DomainError

Kind = Literal["conflict", "unprocessable", "forbidden", "not_found", "internal"]


class PaymentsError(DomainError):
    """A rule refused the request (409 unless a subclass says otherwise)."""

    kind: Kind = "conflict"

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail, code=code, field=field)


class NotAllowed(PaymentsError):
    kind = "forbidden"


class Unknown(PaymentsError):
    kind = "not_found"


class Invalid(PaymentsError):
    kind = "unprocessable"


class IllegalMove(PaymentsError):
    """A decision asked a state machine for a move its table does not allow: a defect in
    the rules, never the caller's fault (every decision checks its own preconditions)."""

    kind = "internal"

    def __init__(self, what: str, status: str, move: str) -> None:
        super().__init__("illegal_move", f"a {status} {what} cannot {move}")
