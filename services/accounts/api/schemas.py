"""What the accounts routes answer: the public view of an account (personal data decrypted
unless erased or withheld) and the report of a CSV import."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from services.accounts.handlers.accounts import Context
from services.accounts.store.accounts import AccountRow
from shared.events.accounts import NeedTier, StatusReasonCode


class NeedProfilePublic(BaseModel):
    qualification_level: int
    employment_status: str
    need_tier: NeedTier
    employer_id: str | None = None
    # personal data: shown with the rest of them (None when erased or withheld)
    need_flags: list[str] | None


class AccountPublic(BaseModel):
    account_id: uuid.UUID
    agency_id: str
    status: Literal["active", "suspended", "closed"]
    status_reason_code: StatusReasonCode | None
    # the agency's own note on the last lifecycle move: withheld like personal data
    status_note: str | None
    country: str | None
    region: str | None
    birth_year: int | None
    need_profile: NeedProfilePublic
    personal: dict[str, Any] | None
    personal_data_erased: bool
    # an auditor's view is pseudonymous unless a purpose was stated (and logged)
    personal_data_withheld: bool = False
    opened_at: datetime
    updated_at: datetime


class AccountOpenedReply(BaseModel):
    account_id: uuid.UUID
    status: str


class AccountPage(BaseModel):
    items: list[AccountPublic]
    next: str | None


class RejectedLine(BaseModel):
    line: int
    error: str


class ImportReportPublic(BaseModel):
    total: int
    opened: int
    existing: int
    rejected_count: int
    rejected: list[RejectedLine]
    ignored_columns: list[str]


async def public(ctx: Context, row: AccountRow, *, reveal: bool = True) -> AccountPublic:
    personal = await ctx.personal(row) if reveal else None
    flags = personal.pop("need_flags", []) if personal is not None else None
    birth_date = personal.get("birth_date") if personal is not None else None
    return AccountPublic(
        account_id=row.account_id,
        agency_id=row.agency_id,
        status=row.status,
        status_reason_code=row.status_reason_code,
        status_note=row.status_note if reveal else None,
        country=row.country,
        region=row.region,
        birth_year=int(birth_date[:4]) if birth_date else None,
        need_profile=NeedProfilePublic(
            qualification_level=row.qualification_level,
            employment_status=row.employment_status,
            need_tier=row.need_tier,
            employer_id=row.employer_id,
            need_flags=flags,
        ),
        personal=personal,
        personal_data_erased=row.erased_at is not None,
        personal_data_withheld=not reveal and row.erased_at is None,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
    )
