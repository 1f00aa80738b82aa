"""Events published by the accounts service on the ``accounts`` topic.

They carry the pseudonymous account id and the need category the ledger's entitlement
policy uses; never names, contact data or the national id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.base import Event, event

EmploymentStatus = Literal["employed", "unemployed", "self_employed", "inactive"]


class NeedProfile(Event):
    """What the entitlement policy modulates on (no personal data)."""

    qualification_level: int = Field(ge=0, le=8, description="EQF level 0-8")
    employment_status: EmploymentStatus
    need_flags: list[str] = Field(default_factory=list)


class _AccountEvent(Event):
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        return str(self.account_id)


@event("accounts.AccountOpened")
class AccountOpened(_AccountEvent):
    agency_id: str
    country: str
    region: str
    birth_year: int
    profile: NeedProfile
    opened_at: datetime


@event("accounts.AccountProfileUpdated")
class AccountProfileUpdated(_AccountEvent):
    profile: NeedProfile


@event("accounts.AccountSuspended")
class AccountSuspended(_AccountEvent):
    reason: str


@event("accounts.AccountReinstated")
class AccountReinstated(_AccountEvent):
    reason: str


@event("accounts.AccountClosed")
class AccountClosed(_AccountEvent):
    reason: str


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
