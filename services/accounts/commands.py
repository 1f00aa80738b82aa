"""What callers may ask of the accounts service (request models, validated strictly)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Literal

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from shared.events.accounts import StatusReasonCode

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _printable(allowed: str = "") -> AfterValidator:
    """Refuse control characters (NUL and the like), which PostgreSQL, logs and the
    consumers of events must never receive."""

    def check(value: str) -> str:
        for ch in value:
            if ch not in allowed and unicodedata.category(ch) == "Cc":
                raise ValueError("must not contain control characters")
        return value

    return AfterValidator(check)


def iso_date(value: object) -> object:
    """A date from its ISO form: strict mode refuses strings for dates, and JSON has no date
    type, so a ``before`` validator parses ``YYYY-MM-DD`` (and nothing else) here."""
    if isinstance(value, str):
        try:
            if not ISO_DATE.fullmatch(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be a real date as YYYY-MM-DD") from exc
    return value


def country_code(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


AGENCY_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
EmploymentStatus = Literal["employed", "unemployed", "self_employed", "inactive"]
NeedFlag = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _printable()
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _printable()
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PersonalData(Strict):
    given_name: Text
    family_name: Text
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{4,32}$")] | None = None
    address: Annotated[str, StringConstraints(max_length=500), _printable("\n\r\t")] | None = None


class NeedProfileFields(Strict):
    qualification_level: int = Field(ge=0, le=8, description="EQF level 0-8")
    employment_status: EmploymentStatus
    need_flags: list[NeedFlag] = Field(default_factory=list, max_length=20)
    employer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="the employer's id (its co-funding rules cover its employees), never a name",
    )

    @field_validator("need_flags")
    @classmethod
    def _unique(cls, flags: list[str]) -> list[str]:
        return sorted(set(flags))


NationalId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9 .\-/]{4,32}$")
]
CountryCode = Annotated[
    str, StringConstraints(min_length=2, max_length=2), AfterValidator(country_code)
]
IsoDate = Annotated[date, BeforeValidator(iso_date)]


class OpenAccount(NeedProfileFields):
    national_id: NationalId
    birth_date: IsoDate = Field(description="ISO 8601 date")
    country: CountryCode = Field(description="ISO 3166-1 alpha-2")
    region: Text
    personal: PersonalData


class UpdateProfile(Strict):
    qualification_level: int | None = Field(default=None, ge=0, le=8)
    employment_status: EmploymentStatus | None = None
    need_flags: list[NeedFlag] | None = Field(default=None, max_length=20)
    employer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="the employer's id (null: none), never a name",
    )


class LifecycleChange(Strict):
    """A lifecycle move: why, as a code (the only thing events carry), and optionally a note
    for the agency's own file, kept with the account and dropped at erasure."""

    reason_code: StatusReasonCode
    note: Reason | None = None


class TransferAccount(Strict):
    to_agency_id: Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]
    reason: Reason | None = None


RecordId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), _printable()
]


class FeedRecord(Strict):
    """One person as the population register describes them (a line of a register feed,
    docs/register-feed.md). ``agency_id`` names the agency that will manage a new account;
    when absent, the feed's table of agencies by country and region decides. What the
    register does not know of the need profile (``qualification_level``,
    ``employment_status``) takes the feed's defaults, for the agency to correct."""

    record_id: RecordId
    national_id: NationalId
    birth_date: IsoDate = Field(description="ISO 8601 date")
    death_date: Annotated[date | None, BeforeValidator(iso_date)] = Field(
        default=None, description="ISO 8601 date, when deceased"
    )
    country: CountryCode = Field(description="ISO 3166-1 alpha-2")
    region: Text
    agency_id: Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)] | None = None
    given_name: Text
    family_name: Text
    email: EmailStr | None = None
    qualification_level: int | None = Field(default=None, ge=0, le=8)
    employment_status: EmploymentStatus | None = None

    def open_account(
        self, qualification_level: int, employment_status: EmploymentStatus
    ) -> OpenAccount:
        """The opening this record asks for (already validated: built without checking
        again), with the defaults for what the register does not know."""
        return OpenAccount.model_construct(
            national_id=self.national_id,
            birth_date=self.birth_date,
            country=self.country,
            region=self.region,
            qualification_level=(
                qualification_level
                if self.qualification_level is None
                else self.qualification_level
            ),
            employment_status=self.employment_status or employment_status,
            need_flags=[],
            personal=PersonalData.model_construct(
                given_name=self.given_name, family_name=self.family_name, email=self.email
            ),
        )
