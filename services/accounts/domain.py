"""Accounts rules as pure functions: who may open an account, lifecycle transitions.

No I/O here. The handlers load an :class:`Account`, ask these functions, and store what
they return.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from shared.errors import DomainError

Status = Literal["active", "suspended", "closed"]


class AccountError(DomainError):
    code = "account_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class OutsideWorkingAge(AccountError):
    code = "outside_working_age"


class InvalidTransition(AccountError):
    code = "invalid_transition"


@dataclass(frozen=True)
class Account:
    account_id: uuid.UUID
    agency_id: str
    status: Status
    qualification_level: int
    employment_status: str
    need_flags: tuple[str, ...]
    erased: bool = False


def national_id_hash(national_id: str, pepper: str) -> str:
    """A keyed hash: equal for the same person, useless without the secret pepper."""
    normalized = "".join(national_id.split()).upper()
    return hmac.new(pepper.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def age_on(birth_date: date, today: date) -> int:
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def check_working_age(birth_date: date, today: date, min_age: int, max_age: int) -> None:
    if birth_date > today:
        raise OutsideWorkingAge("birth_date lies in the future")
    age = age_on(birth_date, today)
    if not min_age <= age <= max_age:
        raise OutsideWorkingAge(
            f"birth_date gives age {age}, outside working age {min_age} to {max_age}"
        )


def suspend(account: Account) -> Account:
    if account.status != "active":
        raise InvalidTransition(f"an account that is {account.status} cannot be suspended")
    return replace(account, status="suspended")


def reinstate(account: Account) -> Account:
    if account.status != "suspended":
        raise InvalidTransition(f"an account that is {account.status} cannot be reinstated")
    return replace(account, status="active")


def close(account: Account) -> Account:
    if account.status == "closed":
        raise InvalidTransition("the account is already closed; closing is final")
    return replace(account, status="closed")


def transfer(account: Account, to_agency: str) -> Account:
    if account.status == "closed":
        raise InvalidTransition("a closed account cannot be transferred")
    if account.agency_id == to_agency:
        raise InvalidTransition("the account is already managed by that agency")
    return replace(account, agency_id=to_agency)


def update_profile(account: Account) -> None:
    if account.status == "closed":
        raise InvalidTransition("a closed account's profile cannot change")
