"""What callers may ask of the catalogue (request models, validated before anything runs).

Numbers that matter (price, seats, EQF level, workload) are strict integers: ``"12"`` or
``12.0`` is refused rather than guessed at. Every error names its field.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import pycountry
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from services.catalogue.domain import isced
from services.catalogue.domain.courses import Action
from shared.events.base import UtcDatetime
from shared.events.catalogue import (
    AccreditationReasonCode,
    CourseApprovalReasonCode,
    CourseRejectionReasonCode,
    CourseWithdrawalReasonCode,
    RevocationReasonCode,
    SuspensionReasonCode,
    ValidationMethod,
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
"""Free text beside a reason code: kept in the catalogue's own tables, never in an event."""
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")]
EscoSkill = Annotated[
    str,
    StringConstraints(
        pattern=r"^http://data\.europa\.eu/esco/skill/[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$"
    ),
]
CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2)]
Outcome = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Kind = Literal["training", "guidance", "validation"]
Mode = Literal["in_person", "online", "blended"]
Supervision = Literal[
    "unsupervised_no_identity_verification",
    "supervised_no_identity_verification",
    "supervised_online_identity_verification",
    "onsite_identity_verification",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


# -- providers -------------------------------------------------------------------------


class QualityAssurance(Strict):
    scheme: Text = Field(description="the quality-assurance scheme or label, e.g. Qualiopi")
    valid_until: date = Field(description="last day the quality assurance is valid")


class PayoutDetails(Strict):
    iban: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
    bic: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]

    @field_validator("iban", "bic")
    @classmethod
    def _compact(cls, value: str, info: ValidationInfo) -> str:
        """The compact form, once schwifty has checked the code (checksum, country, bank)."""
        name, code = ("IBAN", IBAN) if info.field_name == "iban" else ("BIC", BIC)
        try:
            return code(value).compact
        except SchwiftyException as exc:
            raise ValueError(f"not a valid {name}: {exc}") from exc


class RegisterProvider(Strict):
    name: Text
    country: CountryCode = Field(description="ISO 3166-1 alpha-2")
    registration_number: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9 .\-/]{2,40}$")
    ]
    quality_assurance: QualityAssurance
    payout: PayoutDetails
    contact_email: EmailStr | None = Field(
        default=None,
        description="where the provider's messages go (payouts sent, claims contested); "
        "kept by the catalogue only, never in an event",
    )

    _check_country = field_validator("country")(_country)


class Accredit(Strict):
    reason_code: AccreditationReasonCode
    note: Note | None = None
    quality_assurance: QualityAssurance | None = Field(
        default=None, description="a renewed quality assurance (scheme and validity)"
    )


class Suspend(Strict):
    reason_code: SuspensionReasonCode
    note: Note | None = None


# -- courses ---------------------------------------------------------------------------


class Stackability(Strict):
    integration: Literal["stand_alone", "stackable"]
    towards: Text | None = Field(default=None, description="the credential it stacks into")


class Descriptor(Strict):
    """The elements of the EU micro-credential (Council Recommendation 2022/C 243/02,
    Annex I) that the provider states. The other mandatory elements come from the course
    itself (learning outcomes, notional workload, level, form of participation) or from the
    issuance (learner identification, date of issuing, grade)."""

    title: Text = Field(description="title of the micro-credential")
    issuer_countries: list[CountryCode] = Field(min_length=1, max_length=30)
    issuer_regions: list[Text] = Field(default_factory=list, max_length=30)
    awarding_bodies: list[Text] = Field(min_length=1, max_length=10)
    assessment_type: Text = Field(description="type of assessment")
    quality_assurance: Text = Field(description="type of quality assurance underpinning it")
    # optional elements
    prerequisites: LongText | None = None
    supervision: Supervision | None = Field(
        default=None, description="supervision and identity verification during assessment"
    )
    grading_scheme: Text | None = None
    stackability: Stackability | None = Field(default=None, description="integration/stackability")
    further_information: LongText | None = None

    @field_validator("issuer_countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        return [_country(v) for v in values]


# sessions are dated before this: credit held for a session until its claim window is over
# must still be a date (a session ending on 9999-12-31 has none)
SESSION_HORIZON = datetime(2200, 1, 1, tzinfo=UTC)


class SessionSpec(Strict):
    session_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    start: UtcDatetime
    end: UtcDatetime
    seats: StrictInt = Field(ge=1, le=100_000)

    @field_validator("start", "end")
    @classmethod
    def _before_horizon(cls, value: datetime) -> datetime:
        if value >= SESSION_HORIZON:
            raise ValueError(f"a session is dated before {SESSION_HORIZON.year}")
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> SessionSpec:
        if self.end <= self.start:
            raise ValueError("a session must end after it starts")
        return self


def _check_sessions(sessions: list[SessionSpec]) -> list[SessionSpec]:
    ids = [s.session_id for s in sessions]
    if len(set(ids)) != len(ids):
        raise ValueError("session ids must be unique")
    return sorted(sessions, key=lambda s: (s.start, str(s.session_id)))


def _check_isced(code: str) -> str:
    if isced.lookup(code) is None:
        raise ValueError(f"{code!r} is not an ISCED-F 2013 field code")
    return code


def _check_language(code: str) -> str:
    lowered = code.lower()
    if pycountry.languages.get(alpha_2=lowered) is None:
        raise ValueError(f"{code!r} is not an ISO 639-1 language code")
    return lowered


def _check_ects(value: float | None) -> float | None:
    if value is not None and round(value * 10) != value * 10:
        raise ValueError("ECTS credits have at most one decimal")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


IscedCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,4}$")]
Price = Annotated[StrictInt, Field(ge=1, le=10**10, description="minor units (cents)")]
EqfLevel = Annotated[StrictInt, Field(ge=1, le=8)]
Hours = Annotated[StrictInt, Field(ge=1, le=10_000)]
Ects = Annotated[float, Field(ge=0, le=240)]
Language = Annotated[str, StringConstraints(min_length=2, max_length=2)]


class CourseContent(Strict):
    kind: Kind
    title: Text
    description: LongText
    language: Language = Field(description="ISO 639-1")
    learning_outcomes: list[Outcome] = Field(min_length=1, max_length=50)
    eqf_level: EqfLevel
    isced_field: IscedCode = Field(description="ISCED-F 2013 field code")
    esco_skills: list[EscoSkill] = Field(default_factory=list, max_length=100)
    workload_hours: Hours
    ects: Ects | None = None
    mode: Mode
    region: Text
    price: Price
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    sessions: list[SessionSpec] = Field(min_length=1, max_length=500)
    descriptor: Descriptor

    _isced = field_validator("isced_field")(_check_isced)
    _language = field_validator("language")(_check_language)
    _ects = field_validator("ects")(_check_ects)
    _sessions = field_validator("sessions")(_check_sessions)
    _skills = field_validator("esco_skills", "tags")(_unique)


class CreateCourse(CourseContent):
    pass


class UpdateCourse(Strict):
    """A change: the fields given replace the current version's (a new version is made)."""

    kind: Kind | None = None
    title: Text | None = None
    description: LongText | None = None
    language: Language | None = None
    learning_outcomes: list[Outcome] | None = Field(default=None, min_length=1, max_length=50)
    eqf_level: EqfLevel | None = None
    isced_field: IscedCode | None = None
    esco_skills: list[EscoSkill] | None = Field(default=None, max_length=100)
    workload_hours: Hours | None = None
    ects: Ects | None = None
    mode: Mode | None = None
    region: Text | None = None
    price: Price | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    sessions: list[SessionSpec] | None = Field(default=None, min_length=1, max_length=500)
    descriptor: Descriptor | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        # only given fields are validated: null may clear the ECTS credits, nothing else
        if value is None and info.field_name != "ects":
            raise ValueError("may be left out but not null")
        return value

    @field_validator("isced_field")
    @classmethod
    def _isced(cls, value: str | None) -> str | None:
        return None if value is None else _check_isced(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else _check_language(value)

    _ects = field_validator("ects")(_check_ects)

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, value: list[SessionSpec] | None) -> list[SessionSpec] | None:
        return None if value is None else _check_sessions(value)


class Approval(Strict):
    reason_code: CourseApprovalReasonCode
    note: Note | None = None


class Rejection(Strict):
    reason_code: CourseRejectionReasonCode
    note: Note | None = Field(default=None, description="what the provider will read")


class Withdrawal(Strict):
    reason_code: CourseWithdrawalReasonCode | None = None
    note: Note | None = None


class CourseStep(Strict):
    """One step of a course's eligibility workflow (who may take it is the caller's check)."""

    action: Action
    reason_code: (
        CourseApprovalReasonCode | CourseRejectionReasonCode | CourseWithdrawalReasonCode | None
    ) = None
    note: Note | None = None


class RevokeCredential(Strict):
    reason_code: RevocationReasonCode
    note: Note | None = Field(
        default=None,
        description="checked, never stored: a credential is the learner's, and the catalogue "
        "keeps no free text about a learner",
    )


class Assessment(Strict):
    """How the prior learning was assessed: the method (a code), the day, and the body whose
    assessor assessed it."""

    method: ValidationMethod
    assessed_on: date
    assessor_body: Text

    @field_validator("assessed_on")
    @classmethod
    def _not_in_the_future(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("the assessment is in the future")
        return value


class RecordValidation(Strict):
    """The outcome of a validation of prior learning on an enrolment in a course of kind
    ``validation``: the learning outcomes validated, their EQF level and the assessment."""

    enrolment_id: uuid.UUID
    learning_outcomes: list[Outcome] = Field(min_length=1, max_length=50)
    eqf_level: EqfLevel
    assessment: Assessment
