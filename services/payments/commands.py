"""What callers may ask of payments (request bodies), validated for shape only."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.payments import CancellationReason


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProposeEnrolment(_Command):
    """A provider proposes to enrol a learner in a session of one of its approved courses."""

    account_id: uuid.UUID
    course_id: uuid.UUID
    session_id: uuid.UUID
    # the guidance plan that led to this enrolment (a plan of the same learner)
    guidance_plan_id: uuid.UUID | None = None


class ConfirmEnrolment(_Command):
    """The learner consents. ``accept_co_payment``: when the account does not cover the
    price, reserve what it has and let the learner pay the rest."""

    accept_co_payment: bool = False


class CancelEnrolment(_Command):
    """Why, as a code (``changed_mind``, ``schedule_conflict``, ``health``, ``found_work``,
    ``course_cancelled``, ``provider_unable``, ``other``): no free text, which would stay
    in an event kept forever."""

    reason_code: CancellationReason = "other"


class Skill(_Command):
    """A skill a guidance plan names: its ESCO (or similar) URI and/or its label."""

    uri: str | None = Field(default=None, max_length=500, pattern=r"^https?://\S+$")
    label: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _named(self) -> Skill:
        if self.uri is None and self.label is None:
            raise ValueError("a skill needs a uri or a label")
        return self


class RecordGuidanceOutcome(_Command):
    """The outcome of a guidance session: the courses (catalogue ids) and skills the plan
    names (at least one of either), and an optional note (kept by payments only)."""

    courses: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class Document(_Command):
    title: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    uri: str | None = Field(default=None, max_length=2000)


class Evidence(_Command):
    """What the provider shows for a milestone (attendance, completion, certification)."""

    completion_rate: int | None = Field(default=None, ge=0, le=100, strict=True)
    started_on: date
    completed_on: date | None = None
    attendance_hours: float | None = Field(default=None, ge=0, le=10_000)
    certified: bool = False
    grade: str | None = Field(default=None, max_length=100)
    documents: list[Document] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Evidence:
        if self.completed_on is not None and self.completed_on < self.started_on:
            raise ValueError("completed_on is before started_on")
        return self


class SubmitClaim(_Command):
    enrolment_id: uuid.UUID
    milestone: Literal["start", "completion"]
    evidence: Evidence

    @model_validator(mode="after")
    def _completion_needs_rate(self) -> SubmitClaim:
        if self.milestone == "completion":
            if self.evidence.completion_rate is None:
                raise ValueError("a completion claim needs evidence.completion_rate")
            if self.evidence.completed_on is None:
                raise ValueError("a completion claim needs evidence.completed_on")
        if self.evidence.certified and self.milestone != "completion":
            raise ValueError("only a completion can be certified")
        return self


class RunPayouts(_Command):
    execution_date: date | None = None


class FailPayout(_Command):
    """The bank's return reason, an ISO 20022 reason code (``AC04``: closed account, ...)."""

    reason_code: str = Field(min_length=4, max_length=4)


class SetPayee(_Command):
    """New bank details for a provider, proposed by the provider itself or the agency that
    registered it; a second person approves them (a changed bank account is a fraud vector).
    """

    name: str = Field(min_length=1, max_length=70)
    iban: str = Field(min_length=15, max_length=42)
    bic: str | None = Field(default=None, min_length=8, max_length=11)


class VerifyPayee(_Command):
    """Finance's verification-of-payee check of the provider's current bank details."""

    iban: str = Field(min_length=15, max_length=42)
    result: Literal["match", "close_match", "no_match"]
