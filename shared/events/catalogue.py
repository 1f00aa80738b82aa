"""Events published by the catalogue service on the ``catalogue`` topic.

Other services keep their own read models from these: payments needs the provider's payout
details and eligibility (status and quality-assurance validity) and, for each approved
course version, its price, sessions and classification (the ledger matches earmarks on
ISCED-F field, EQF level and tags). Every course event carries the course version it is
about, so that an enrolment stays on the version it was made on.

Provider ids are the catalogue's UUIDs as strings (the same string a provider token
carries in its ``provider_id`` claim). Prices are integer minor units of the deployment's
currency; times are aware datetimes.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.approvals import ApprovalDecided, ApprovalRequested
from shared.events.base import Actor, Event, event, upcaster

CourseKind = Literal["training", "guidance", "validation"]
CourseMode = Literal["in_person", "online", "blended"]
CourseStatus = Literal["draft", "submitted", "approved", "rejected", "withdrawn"]
ProviderStatus = Literal["registered", "accredited", "suspended"]

# Why a decision was taken: codes only (events are kept forever and carry no free text; the
# catalogue keeps a decision's optional note in its own tables).
AccreditationReasonCode = Literal["qa_audit_passed", "qa_renewed", "concerns_resolved", "other"]
SuspensionReasonCode = Literal[
    "fraud_suspected", "quality_concerns", "qa_expired", "requested_by_provider", "other"
]
CourseApprovalReasonCode = Literal["meets_criteria", "other"]
CourseRejectionReasonCode = Literal[
    "incomplete_information",
    "not_eligible",
    "price_not_justified",
    "quality_concerns",
    "duplicate_course",
    "other",
]
CourseWithdrawalReasonCode = Literal["no_longer_offered", "replaced", "provider_closing", "other"]
RevocationReasonCode = Literal["capture_reversed", "fraud", "issued_in_error", "other"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionInfo(_Value):
    """One dated run of a course and how many learners it takes."""

    session_id: uuid.UUID
    start: AwareDatetime
    end: AwareDatetime
    seats: int = Field(ge=1)


class Payout(_Value):
    """Where the provider is paid (validated IBAN and BIC, compact form)."""

    iban: str
    bic: str
    account_holder: str


# -- providers -------------------------------------------------------------------------


class _ProviderEvent(Event):
    provider_id: str

    def aggregate_id(self) -> str:
        return self.provider_id


@event("catalogue.ProviderRegistered")
class ProviderRegistered(_ProviderEvent):
    """A provider is known; it becomes eligible once accredited (and while its QA is valid)."""

    agency_id: str
    name: str
    country: str
    registration_number: str
    qa_scheme: str
    qa_valid_until: date
    payout: Payout
    status: ProviderStatus
    registered_at: AwareDatetime


@event("catalogue.ProviderAccredited", version=2)
class ProviderAccredited(_ProviderEvent):
    """Eligible from now on until ``qa_valid_until`` (inclusive) unless suspended."""

    reason_code: AccreditationReasonCode
    qa_scheme: str
    qa_valid_until: date


@event("catalogue.ProviderSuspended", version=2)
class ProviderSuspended(_ProviderEvent):
    """Not eligible: no new enrolments; its courses leave the public registry."""

    reason_code: SuspensionReasonCode


# -- courses ---------------------------------------------------------------------------


class _CourseEvent(Event):
    course_id: uuid.UUID
    version: int = Field(ge=1)
    provider_id: str

    def aggregate_id(self) -> str:
        return str(self.course_id)


class _CourseTermsEvent(_CourseEvent):
    """A course event carrying what an enrolment and an earmark need of that version."""

    kind: CourseKind
    title: str
    price: Annotated[int, Field(strict=True, gt=0)]
    currency: str
    sessions: tuple[SessionInfo, ...]
    isced_field: str = Field(pattern=r"^[0-9]{2,4}$", description="ISCED-F 2013 code")
    eqf_level: int = Field(ge=1, le=8)
    tags: tuple[str, ...] = ()
    mode: CourseMode
    region: str
    workload_hours: int = Field(ge=1)


@event("catalogue.CourseSubmitted")
class CourseSubmitted(_CourseEvent):
    """The provider asks for this version to be approved."""


@event("catalogue.CourseApproved")
class CourseApproved(_CourseTermsEvent):
    """This version is eligible: listed in the public registry, enrolments may use it."""

    approved_by: Actor
    approved_at: AwareDatetime


@event("catalogue.CourseRejected", version=2)
class CourseRejected(_CourseEvent):
    reason_code: CourseRejectionReasonCode


@event("catalogue.CourseWithdrawn", version=2)
class CourseWithdrawn(_CourseEvent):
    """The provider withdrew the course: no new enrolments; existing ones keep their version."""

    reason_code: CourseWithdrawalReasonCode | None = None


@event("catalogue.CourseUpdated")
class CourseUpdated(_CourseTermsEvent):
    """A new version was made. ``changed`` names the fields that differ from the previous
    version; ``status`` is the course's status after the change (a price or content change
    of an approved course sends it back to ``submitted``; a change of sessions alone keeps
    it ``approved``)."""

    previous_version: int = Field(ge=1)
    status: CourseStatus
    changed: tuple[str, ...]


# -- credentials -----------------------------------------------------------------------


class _CredentialEvent(Event):
    credential_id: uuid.UUID
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        # keyed by the learner: their issuances and revocations stay in order
        return str(self.account_id)


@event("catalogue.CredentialIssued")
class CredentialIssued(_CredentialEvent):
    """A signed micro-credential was issued to the learner for a certified completion."""

    enrolment_id: uuid.UUID
    course_id: uuid.UUID
    course_version: int = Field(ge=1)
    provider_id: str
    issuer: str
    issued_at: AwareDatetime


ValidationMethod = Literal[
    "portfolio", "interview", "observation", "simulation", "test", "declarative", "mixed"
]
"""How prior learning was assessed (the methods of the European guidelines for validating
non-formal and informal learning), as a code."""


@event("catalogue.PriorLearningValidated")
class PriorLearningValidated(_CredentialEvent):
    """A provider validated a learner's prior learning (an enrolment in a course of kind
    ``validation``): ``outcomes`` learning outcomes at EQF level ``eqf_level``, assessed by
    ``method`` on ``assessed_on``; the credential ``credential_id`` certifies it. The
    outcomes' wording and the assessor's body stay in the catalogue's tables."""

    validation_id: uuid.UUID
    enrolment_id: uuid.UUID
    course_id: uuid.UUID
    provider_id: str
    eqf_level: int = Field(ge=1, le=8)
    outcomes: int = Field(ge=1)
    method: ValidationMethod
    assessed_on: date
    validated_at: AwareDatetime


@event("catalogue.CredentialRevoked", version=2)
class CredentialRevoked(_CredentialEvent):
    reason_code: RevocationReasonCode
    revoked_at: AwareDatetime


# Version 1 of these carried free-text reasons. Topics keep them; reading one upcasts it to a
# reason code: ``other``, except the codes the catalogue itself wrote as the reason.
def _reason_v1(*kept: str, optional: bool = False) -> Any:
    def upcast(data: dict[str, Any]) -> dict[str, Any]:
        reason = data.pop("reason", None)
        if reason is None and optional:
            return {**data, "reason_code": None}
        return {**data, "reason_code": reason if reason in kept else "other"}

    return upcast


upcaster("catalogue.ProviderAccredited", 1)(_reason_v1())
upcaster("catalogue.ProviderSuspended", 1)(_reason_v1())
upcaster("catalogue.CourseRejected", 1)(_reason_v1())
upcaster("catalogue.CourseWithdrawn", 1)(_reason_v1(optional=True))
upcaster("catalogue.CredentialRevoked", 1)(_reason_v1("capture_reversed"))


# -- the issuer's keys -----------------------------------------------------------------

KeyRevocationReasonCode = Literal["compromised", "suspected_compromise", "other"]


class _IssuerKeyEvent(Event):
    kid: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")

    def aggregate_id(self) -> str:
        return "issuer-keys"  # one stream: the keyring's changes stay in order


@event("catalogue.IssuerKeyRotated")
class IssuerKeyRotated(_IssuerKeyEvent):
    """A new issuer key (``kid``) signs from now on; the previous one is retired (it still
    verifies what it signed)."""

    retired_kid: str | None = None
    rotated_at: AwareDatetime


@event("catalogue.IssuerKeyRevoked")
class IssuerKeyRevoked(_IssuerKeyEvent):
    """An issuer key was revoked from ``revoked_after`` (approved by a second person): what
    it signed after that moment no longer verifies."""

    revoked_after: AwareDatetime
    reason_code: KeyRevocationReasonCode
    approval_id: uuid.UUID


@event("catalogue.ApprovalRequested")
class CatalogueApprovalRequested(ApprovalRequested):
    """Revoking an issuer key was proposed; it waits for a second person."""


@event("catalogue.ApprovalDecided")
class CatalogueApprovalDecided(ApprovalDecided):
    """A second person approved (and so carried out) or refused a catalogue proposal."""
