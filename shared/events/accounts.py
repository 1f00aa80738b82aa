"""Events published by the accounts service on the ``accounts`` topic.

They carry the pseudonymous account id and what the ledger's entitlement policy uses (the
qualification level, the employment status and the need tier); never names, contact data,
the national id, the birth date, need flags or free text. A need tier is the code the policy
modulates on; the need flags it is computed from stay in the accounts service, encrypted
with the person's other personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from shared.events.base import Event, event, upcaster

EmploymentStatus = Literal["employed", "unemployed", "self_employed", "inactive"]
NeedTier = Literal["standard", "priority", "high"]
NEED_TIERS: tuple[NeedTier, ...] = ("standard", "priority", "high")
HIGH_NEED_FLAGS = frozenset({"disability"})
"""The need flags that put a person in the ``high`` tier; any other flag gives ``priority``."""

StatusReasonCode = Literal[
    "documents_missing",
    "documents_received",
    "eligibility_review",
    "eligibility_confirmed",
    "fraud_suspected",
    "fraud_cleared",
    "fraud_confirmed",
    "requested_by_holder",
    "moved_abroad",
    "deceased",
    "duplicate_account",
    "end_of_eligibility",
    "other",
]
"""Why an account was suspended, reinstated or closed: a code, never free text."""


def need_tier(flags: Iterable[str]) -> NeedTier:
    """The tier a set of need flags puts a person in: ``high`` with a flag of
    :data:`HIGH_NEED_FLAGS`, ``priority`` with any other flag, ``standard`` without."""
    held = set(flags)
    if held & HIGH_NEED_FLAGS:
        return "high"
    return "priority" if held else "standard"


class NeedProfile(Event):
    """What the entitlement policy modulates on (no personal data, no need flags)."""

    qualification_level: int = Field(ge=0, le=8, description="EQF level 0-8")
    employment_status: EmploymentStatus
    need_tier: NeedTier = "standard"
    employer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the employer's id (an id, never a name), when the person is employed",
    )


class _AccountEvent(Event):
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        return str(self.account_id)


@event("accounts.AccountOpened", version=2)
class AccountOpened(_AccountEvent):
    agency_id: str
    profile: NeedProfile
    opened_at: datetime


@event("accounts.AccountProfileUpdated", version=2)
class AccountProfileUpdated(_AccountEvent):
    profile: NeedProfile


@event("accounts.AccountSuspended", version=2)
class AccountSuspended(_AccountEvent):
    reason_code: StatusReasonCode


@event("accounts.AccountReinstated", version=2)
class AccountReinstated(_AccountEvent):
    reason_code: StatusReasonCode


@event("accounts.AccountClosed", version=2)
class AccountClosed(_AccountEvent):
    reason_code: StatusReasonCode


@event("accounts.AccountTransferred")
class AccountTransferred(_AccountEvent):
    from_agency_id: str
    to_agency_id: str


@event("accounts.PersonalDataErased")
class PersonalDataErased(_AccountEvent):
    pass


ReadPurpose = Literal["fraud_investigation", "complaint", "legal_request", "audit_sample"]


@event("accounts.PersonalDataRead")
class PersonalDataRead(_AccountEvent):
    """A national reader (an auditor) read a learner's personal data, for a stated purpose;
    who read it is the event's actor."""

    purpose: ReadPurpose
    read_at: datetime


# Version 1 carried the need flags, the birth year, the region and free-text reasons: a
# consumer still meeting one reads it as version 2 with only what the rules need.
def _profile_v2(profile: dict[str, Any]) -> dict[str, Any]:
    flags = profile.pop("need_flags", None) or []
    return {**profile, "need_tier": need_tier(flags)}


@upcaster("accounts.AccountOpened", 1)
def _opened_v1(data: dict[str, Any]) -> dict[str, Any]:
    for personal in ("birth_year", "country", "region"):
        data.pop(personal, None)
    return {**data, "profile": _profile_v2(dict(data["profile"]))}


@upcaster("accounts.AccountProfileUpdated", 1)
def _profile_updated_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "profile": _profile_v2(dict(data["profile"]))}


def _reason_v1(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("reason", None)
    return {**data, "reason_code": "other"}


for _name in ("AccountSuspended", "AccountReinstated", "AccountClosed"):
    upcaster(f"accounts.{_name}", 1)(_reason_v1)
