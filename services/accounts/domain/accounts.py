"""An account's state and the decisions on it: opening (working age), the lifecycle
(suspend, reinstate, close, transfer), the need profile and erasure of personal data.

Each decision takes the state and what is asked and returns the new state with the events
to publish, or raises an :mod:`~services.accounts.domain.errors` refusal. No I/O here: the
handlers load an :class:`Account`, ask, and store what comes back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from services.accounts.commands import OpenAccount, UpdateProfile
from services.accounts.domain.errors import (
    AccountError,
    AccountExists,
    InvalidTransition,
    ManagedByAnotherAgency,
    OutsideWorkingAge,
)
from shared.events import accounts as events
from shared.events.accounts import (
    EmploymentStatus,
    NeedProfile,
    NeedTier,
    StatusReasonCode,
    need_tier,
)

Status = Literal["active", "suspended", "closed"]
Action = Literal["suspend", "reinstate", "close"]
StatusChanged = events.AccountSuspended | events.AccountReinstated | events.AccountClosed

# The legal lifecycle moves: from which states, to which state, and the event they publish.
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status, type[StatusChanged]]] = {
    "suspend": (frozenset({"active"}), "suspended", events.AccountSuspended),
    "reinstate": (frozenset({"suspended"}), "active", events.AccountReinstated),
    "close": (frozenset({"active", "suspended"}), "closed", events.AccountClosed),
}
PAST = {"suspend": "suspended", "reinstate": "reinstated", "close": "closed"}


@dataclass(frozen=True)
class WorkingAge:
    """The ages, inclusive, at which a person may hold an account."""

    min_age: int = 18
    max_age: int = 67


@dataclass(frozen=True)
class Account:
    """An account as its rules see it. ``need_flags`` are personal data (kept encrypted,
    empty once erased); only the ``need_tier`` computed from them leaves the service."""

    account_id: uuid.UUID
    agency_id: str
    status: Status
    qualification_level: int
    employment_status: EmploymentStatus
    need_tier: NeedTier = "standard"
    need_flags: tuple[str, ...] = ()
    erased: bool = False
    employer_id: str | None = None

    def profile(self) -> NeedProfile:
        return NeedProfile(
            qualification_level=self.qualification_level,
            employment_status=self.employment_status,
            need_tier=self.need_tier,
            employer_id=self.employer_id,
        )


def age_on(birth_date: date, today: date) -> int:
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def check_working_age(birth_date: date, today: date, ages: WorkingAge) -> None:
    if birth_date > today:
        raise OutsideWorkingAge("birth_date lies in the future")
    age = age_on(birth_date, today)
    if not ages.min_age <= age <= ages.max_age:
        raise OutsideWorkingAge(
            f"birth_date gives age {age}, outside working age {ages.min_age} to {ages.max_age}"
        )


def open_account(
    account_id: uuid.UUID, cmd: OpenAccount, agency_id: str, now: datetime, ages: WorkingAge
) -> tuple[Account, events.AccountOpened]:
    """A new active account for a person of working age on ``now``'s date."""
    check_working_age(cmd.birth_date, now.date(), ages)
    account = Account(
        account_id=account_id,
        agency_id=agency_id,
        status="active",
        qualification_level=cmd.qualification_level,
        employment_status=cmd.employment_status,
        need_tier=need_tier(cmd.need_flags),
        need_flags=tuple(cmd.need_flags),
        employer_id=cmd.employer_id,
    )
    event = events.AccountOpened(
        account_id=account_id, agency_id=agency_id, profile=account.profile(), opened_at=now
    )
    return account, event


def may_name(managed_by: str, asked_by: str) -> bool:
    """May an existing account's id be told to ``asked_by``? Only to the agency managing it:
    to any other, the id of a person it does not manage is not its to know."""
    return managed_by == asked_by


def already_open(account_id: uuid.UUID, managed_by: str, asked_by: str) -> AccountError:
    """The refusal of a second account for the same person, as much as ``asked_by`` may know."""
    if may_name(managed_by, asked_by):
        return AccountExists(account_id)
    return ManagedByAnotherAgency()


def change_status(
    account: Account, action: Action, reason_code: StatusReasonCode
) -> tuple[Account, StatusChanged]:
    allowed, target, event = TRANSITIONS[action]
    if account.status not in allowed:
        if account.status == "closed" and action == "close":
            raise InvalidTransition("the account is already closed; closing is final")
        raise InvalidTransition(f"an account that is {account.status} cannot be {PAST[action]}")
    changed = event(account_id=account.account_id, reason_code=reason_code)
    return replace(account, status=target), changed


def transfer(account: Account, to_agency: str) -> tuple[Account, events.AccountTransferred]:
    if account.status == "closed":
        raise InvalidTransition("a closed account cannot be transferred")
    if account.agency_id == to_agency:
        raise InvalidTransition("the account is already managed by that agency")
    event = events.AccountTransferred(
        account_id=account.account_id, from_agency_id=account.agency_id, to_agency_id=to_agency
    )
    return replace(account, agency_id=to_agency), event


def update_profile(
    account: Account, cmd: UpdateProfile
) -> tuple[Account, list[events.AccountProfileUpdated]]:
    """The profile with what ``cmd`` names changed (flags sorted, once each, and the tier
    they give); no event when it names nothing. A closed account's profile never changes."""
    if account.status == "closed":
        raise InvalidTransition("a closed account's profile cannot change")
    names_employer = "employer_id" in cmd.model_fields_set
    if (
        cmd.qualification_level is None
        and cmd.employment_status is None
        and cmd.need_flags is None
        and not names_employer
    ):
        return account, []
    updated = replace(
        account,
        qualification_level=(
            account.qualification_level
            if cmd.qualification_level is None
            else cmd.qualification_level
        ),
        employment_status=cmd.employment_status or account.employment_status,
        employer_id=cmd.employer_id if names_employer else account.employer_id,
    )
    if cmd.need_flags is not None:
        flags = tuple(sorted(set(cmd.need_flags)))
        updated = replace(updated, need_flags=flags, need_tier=need_tier(flags))
    return updated, [
        events.AccountProfileUpdated(account_id=account.account_id, profile=updated.profile())
    ]


def erase_personal_data(account: Account) -> tuple[Account, list[events.PersonalDataErased]]:
    """Erasure is final and happens once: erasing again changes nothing and publishes nothing.
    What remains is what the rules need: the account, its agency, status and need profile
    (the tier, not the flags)."""
    if account.erased:
        return account, []
    erased = replace(account, erased=True, need_flags=())
    return erased, [events.PersonalDataErased(account_id=account.account_id)]
