"""What a record of the population register's feed asks for, given the person's account (if
any) and the feed's date: open an account, nothing (it exists), close it (death, or past
working age), skip the person (no account and none to open), or reject the record.

Pure: the handler (:mod:`services.accounts.handlers.register`) looks the account up by the
keyed hash of the national id and carries the decision out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from services.accounts.commands import FeedRecord
from services.accounts.domain.accounts import WorkingAge, age_on
from shared.events.accounts import StatusReasonCode

Outcome = Literal["opened", "existing", "closed", "skipped", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("opened", "existing", "closed", "skipped", "rejected")
AccountStatus = Literal["active", "suspended", "closed"]

DECEASED: StatusReasonCode = "deceased"
END_OF_ELIGIBILITY: StatusReasonCode = "end_of_eligibility"


@dataclass(frozen=True)
class Decision:
    """``open``: a new account; ``close``: close the account with ``reason_code``;
    otherwise the outcome to report as it is (``existing``, ``skipped``, ``rejected``)."""

    action: Literal["open", "close", "report"]
    outcome: Outcome
    reason: str | None = None
    reason_code: StatusReasonCode | None = None


def decide(
    record: FeedRecord, status: AccountStatus | None, on: date, ages: WorkingAge
) -> Decision:
    """The decision for ``record`` on the feed's date ``on``; ``status`` is that of the
    person's account (None: they have none)."""
    if record.birth_date > on:
        return Decision("report", "rejected", "birth_date: lies after the feed's date")
    if record.death_date is not None:
        if record.death_date > on:
            return Decision("report", "rejected", "death_date: lies after the feed's date")
        if record.death_date < record.birth_date:
            return Decision("report", "rejected", "death_date: lies before birth_date")
        return _leaving(status, DECEASED, "deceased")
    age = age_on(record.birth_date, on)
    if age > ages.max_age:
        return _leaving(
            status, END_OF_ELIGIBILITY, f"outside working age: {age} is over {ages.max_age}"
        )
    if status is not None:
        return Decision("report", "existing", "closed" if status == "closed" else None)
    if age < ages.min_age:
        return Decision("report", "skipped", f"outside working age: {age} is under {ages.min_age}")
    return Decision("open", "opened")


def _leaving(status: AccountStatus | None, code: StatusReasonCode, why: str) -> Decision:
    """A person who may hold no account (any more): theirs is closed, if open."""
    if status is None:
        return Decision("report", "skipped", why)
    if status == "closed":
        return Decision("report", "existing", "closed")
    return Decision("close", "closed", code, code)
