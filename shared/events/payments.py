"""Events published by the payments service on the ``payments`` topic.

The ledger reacts to the credit requests (reserve, capture, release); the catalogue issues
a credential on a certified completion. Amounts are integer minor units.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.approvals import ApprovalDecided, ApprovalRequested
from shared.events.base import Actor, Event, event, upcaster
from shared.events.ledger import CourseRef


class _EnrolmentEvent(Event):
    enrolment_id: uuid.UUID
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        # keyed by account: the ledger sees one learner's requests in order
        return str(self.account_id)


@event("payments.EnrolmentProposed")
class EnrolmentProposed(_EnrolmentEvent):
    """A proposal waits for the learner's consent until ``expires_at`` (a provider proposed
    it, or an agency released one the velocity rule held): what the learner is asked to
    agree to, by ids, amounts and dates. The learner's answer is ``EnrolmentRequested``
    (consent) or ``EnrolmentRejected``/``EnrolmentCancelled``."""

    provider_id: str
    course_id: uuid.UUID
    course_version: int = Field(ge=1)
    session_id: uuid.UUID
    starts_on: date
    ends_on: date
    price: int = Field(ge=0)
    co_payment: int = Field(ge=0)
    expires_at: datetime


@event("payments.EnrolmentRequested")
class EnrolmentRequested(_EnrolmentEvent):
    """The learner confirmed: reserve credit for the enrolment."""

    reservation_id: uuid.UUID
    provider_id: str
    course: CourseRef
    course_version: int = Field(ge=1)
    amount: int = Field(gt=0)
    up_to: bool = False
    expires_at: datetime | None = None


@event("payments.CaptureRequested")
class CaptureRequested(_EnrolmentEvent):
    """A claim was approved: capture this much of the reservation (a part, named by the
    claim); ``final`` releases the rest, otherwise it stays reserved for a later claim."""

    reservation_id: uuid.UUID
    claim_id: uuid.UUID
    amount: int = Field(gt=0)
    final: bool = True
    provider_id: str | None = None  # whom the claim pays (None in requests made before)


@event("payments.ReleaseRequested")
class ReleaseRequested(_EnrolmentEvent):
    """The enrolment was cancelled or refused: give the reserved credit back."""

    reservation_id: uuid.UUID
    reason: str


@event("payments.CompletionCertified")
class CompletionCertified(_EnrolmentEvent):
    """The provider certified completion: the catalogue issues the micro-credential."""

    course_id: uuid.UUID
    course_version: int = Field(ge=1)
    provider_id: str
    completed_at: datetime
    completion_rate: int = Field(ge=0, le=100)
    grade: str | None = None


class _EnrolmentOutcome(_EnrolmentEvent):
    provider_id: str
    course_id: uuid.UUID
    session_id: uuid.UUID


@event("payments.EnrolmentConfirmed")
class EnrolmentConfirmed(_EnrolmentOutcome):
    """Credit is reserved: the learner holds a seat. ``covered`` comes from the account,
    ``co_payment`` (the participation fee included) from the learner; ``isced_field`` is the
    course's ISCED-F code (the monitoring counts who trained in which field)."""

    price: int = Field(ge=0)
    covered: int = Field(ge=0)
    co_payment: int = Field(ge=0)
    participation_fee: int = Field(ge=0)
    isced_field: str | None = Field(default=None, pattern=r"^[0-9]{2,4}$")


@event("payments.EnrolmentRejected")
class EnrolmentRejected(_EnrolmentOutcome):
    """The enrolment will not go ahead (the ledger's refusal, the learner's refusal, no
    confirmation in time, an agency's review); the seat is free again."""

    status: str
    reason: str


CancellationReason = Literal[
    "changed_mind",
    "schedule_conflict",
    "health",
    "found_work",
    "course_cancelled",
    "provider_unable",
    "other",
]
"""Why an enrolment was cancelled, as a code: a free-text reason (a learner's health, their
employer) would stay in an event kept forever."""


@event("payments.EnrolmentCancelled", version=2)
class EnrolmentCancelled(_EnrolmentOutcome):
    """Cancelled by the learner or the provider; ``rule`` says which cancellation rule applied
    and ``provider_share`` what the provider keeps (the rest of the credit is released)."""

    cancelled_by: str
    rule: str
    provider_share: int = Field(ge=0)
    reason_code: CancellationReason = "other"


@upcaster("payments.EnrolmentCancelled", 1)
def _cancelled_v1(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data.pop("reason", None)  # free text: never carried forward
    return {**data, "reason_code": "other"}


class _ClaimEvent(Event):
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    provider_id: str
    milestone: str

    def aggregate_id(self) -> str:
        return str(self.enrolment_id)


@event("payments.ClaimApproved")
class ClaimApproved(_ClaimEvent):
    """The claim passed the checks; ``amount`` is being captured from the reservation."""

    amount: int = Field(gt=0)


@event("payments.ClaimRejected")
class ClaimRejected(_ClaimEvent):
    reason: str


@event("payments.ClaimHeld")
class ClaimHeld(_ClaimEvent):
    """A fraud hold: the claim is excluded from payouts until an agency releases it."""

    reason: str


@event("payments.ClaimAttested")
class ClaimAttested(_ClaimEvent):
    """The learner attested the training the claim is for: it may be paid once captured."""


@event("payments.ClaimContested")
class ClaimContested(_ClaimEvent):
    """The learner contested the claim (a reason code, never free text): it is held until
    its release is proposed by the managing agency and approved by finance. ``account_id``
    names the learner (absent from events written before it was added)."""

    reason_code: str
    account_id: uuid.UUID | None = None


@event("payments.ClaimReversed")
class ClaimReversed(_ClaimEvent):
    """The ledger reversed the capture the claim was paid from. An unpaid claim is stopped
    (never paid); a claim already paid (or in a payout) becomes a ``recovery`` of ``amount``
    netted from the provider's next payouts. The catalogue revokes the credential of a
    reversed completion (``recovery_id`` names the recovery, when there is one)."""

    amount: int = Field(gt=0)
    recovery: bool
    recovery_id: uuid.UUID | None = None


class _PayoutEvent(Event):
    payout_id: uuid.UUID
    provider_id: str

    def aggregate_id(self) -> str:
        return self.provider_id


# Claim ids per PayoutSent part: ~40 bytes each in JSON, so a part stays far below the
# broker's 1 MiB message limit whatever the size of the payout.
CLAIMS_PER_PART = 5_000


class RecoveryNetted(BaseModel):
    """Part of a recovery set against a payout: the recovery, the reversed claim it comes
    from, the amount recovered by this payout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recovery_id: uuid.UUID
    claim_id: uuid.UUID
    amount: int = Field(gt=0)


@event("payments.PayoutSent")
class PayoutSent(_PayoutEvent):
    """A credit transfer to the provider was issued for these claims, net of what the
    provider owed back.

    A payout of many claims is told in ``parts`` events (part 1 to ``parts``, each with at
    most :data:`CLAIMS_PER_PART` claim ids and recoveries, and the same payout, run and
    amounts): the union of their ``claim_ids`` is the payout's, and of their ``recoveries``
    what it recovered. ``amount`` is the whole transfer's and ``recovered`` the whole
    payout's recoveries, in every part: the claims owe ``amount + recovered``. A payout
    netted in full transfers nothing (``amount`` 0) and is settled at once."""

    run_id: uuid.UUID
    amount: int = Field(ge=0)
    currency: str
    claim_ids: tuple[uuid.UUID, ...] = Field(max_length=CLAIMS_PER_PART)
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
    recovered: int = Field(default=0, ge=0)
    recoveries: tuple[RecoveryNetted, ...] = Field(default=(), max_length=CLAIMS_PER_PART)


@event("payments.PayoutSettled")
class PayoutSettled(_PayoutEvent):
    """The transfer of ``amount`` was executed (or there was none: the payout was netted in
    full); the ``recovered`` amounts it netted are recovered for good."""

    amount: int = Field(ge=0)
    recovered: int = Field(default=0, ge=0)


@event("payments.PayoutFailed")
class PayoutFailed(_PayoutEvent):
    """The bank returned the transfer; ``reason`` is its ISO 20022 return reason code
    (``AC04``...). The claims are payable again in the next run, under the same
    end-to-end ids; the ``recovered`` amounts it netted are owed again, for the next run."""

    reason: str
    recovered: int = Field(default=0, ge=0)


@event("payments.ApprovalRequested")
class PaymentsApprovalRequested(ApprovalRequested):
    """New bank details, a payout run's release or a held claim's or enrolment's release
    was proposed; it waits for a second person."""


@event("payments.ApprovalDecided")
class PaymentsApprovalDecided(ApprovalDecided):
    """A second person approved (and so carried out) or refused a payments proposal."""


@event("payments.PayoutCancelled")
class PayoutCancelled(_PayoutEvent):
    """An assembled payout was never sent (its run's release was refused or expired, or the
    provider was suspended before release): its claims are payable again and the
    ``recovered`` amounts it netted are owed again."""

    run_id: uuid.UUID
    reason: str
    recovered: int = Field(default=0, ge=0)


class _PayeeEvent(Event):
    provider_id: str

    def aggregate_id(self) -> str:
        return self.provider_id


@event("payments.PayeeChanged")
class PayeeChanged(_PayeeEvent):
    """The provider's bank details changed (proposed, then approved by a second person).
    IBANs are masked; the account holder's name is never carried."""

    previous_iban: str | None
    iban: str
    approval_id: uuid.UUID
    proposed_by: Actor
    approved_by: Actor
    payable_from: datetime


@event("payments.PayeeVerified")
class PayeeVerified(_PayeeEvent):
    """Finance checked the bank details with the bank (verification of payee): payouts to
    them need not wait for the cooling-off period."""

    iban: str
    result: str


@event("payments.PayoutHeld")
class PayoutHeld(_PayeeEvent):
    """A run did not pay the provider (told by this event): its bank details changed less
    than the cooling-off period ago and were not verified. Its claims stay payable for a
    later run."""

    run_id: uuid.UUID
    reason: str
    held_until: datetime | None = None
    claims: int = Field(ge=0)
    amount: int = Field(ge=0)


# -- guidance --------------------------------------------------------------------------


class _GuidanceEvent(Event):
    plan_id: uuid.UUID
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        return str(self.account_id)


@event("payments.GuidancePlanRecorded")
class GuidancePlanRecorded(_GuidanceEvent):
    """The provider of a guidance enrolment recorded its outcome: a plan naming
    ``course_ids`` and ``skills`` skills (their labels stay in payments' tables)."""

    enrolment_id: uuid.UUID
    provider_id: str
    course_ids: tuple[uuid.UUID, ...] = ()
    skills: int = Field(ge=0)
    recorded_at: datetime


@event("payments.GuidancePlanFollowed")
class GuidancePlanFollowed(_GuidanceEvent):
    """An enrolment proposed for the learner names the guidance plan that led to it."""

    enrolment_id: uuid.UUID
    provider_id: str
    course_id: uuid.UUID


# Paid training leave's events (and the ledger's answers to them) are registered with these.
import shared.events.leave  # noqa: E402,F401
