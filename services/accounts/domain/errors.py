"""The accounts service's refusals, each with the kind that decides its HTTP status.

They derive from :class:`shared.errors.DomainError`, so routes let them propagate and the one
exception handler answers them: a lifecycle move the account's state forbids and a person
who already has an account are conflicts (409); an age outside working age is unprocessable
(422, naming ``birth_date``); a CSV file without a usable header is unprocessable (422,
naming ``header``).
"""

from __future__ import annotations

import uuid

from shared.errors import DomainError


class AccountError(DomainError):
    kind = "conflict"
    code = "account_error"


def _field_error(field: str, detail: str, code: str | None = None) -> dict[str, object]:
    """The ``errors`` entry of a request body field at fault, as validation errors list it."""
    error: dict[str, object] = {"field": field, "in": "body", "message": detail}
    if code is not None:
        error["type"] = code
    return error


class OutsideWorkingAge(AccountError):
    kind = "unprocessable"
    code = "outside_working_age"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"errors": [_field_error("birth_date", detail, self.code)]})


class InvalidTransition(AccountError):
    code = "invalid_transition"


class AccountExists(AccountError):
    """The person already has an account, managed by the agency asking: named to it."""

    code = "account_exists"

    def __init__(self, account_id: uuid.UUID) -> None:
        super().__init__(
            f"an account already exists for this national id: {account_id}",
            extra={"account_id": str(account_id)},
        )


class ManagedByAnotherAgency(AccountError):
    """The person already has an account another agency manages: named to no one else."""

    code = "managed_by_another_agency"

    def __init__(self) -> None:
        super().__init__(
            "an account already exists for this national id and is managed by another "
            "agency (ask for a transfer)"
        )


class BadHeader(AccountError):
    """A CSV file whose header line is missing or unusable: nothing of it is imported."""

    kind = "unprocessable"
    code = "bad_header"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"errors": [_field_error("header", detail)]})
