"""Events published by the payments service on the ``payments`` topic.

The ledger reacts to the credit requests (reserve, capture, release); the catalogue issues
a credential on a certified completion. Amounts are integer minor units.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from shared.events.base import Event, event
from shared.events.ledger import CourseRef


class _EnrolmentEvent(Event):
    enrolment_id: uuid.UUID
    account_id: uuid.UUID

    def aggregate_id(self) -> str:
        # keyed by account: the ledger sees one learner's requests in order
        return str(self.account_id)


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
    """A claim was approved: capture this much of the reservation, release the rest."""

    reservation_id: uuid.UUID
    claim_id: uuid.UUID
    amount: int = Field(gt=0)


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
