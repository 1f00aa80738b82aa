"""What the accounts routes answer: the public view of an account (personal data decrypted
unless erased) and the report of a CSV import."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.handlers.personal import personal_data
from services.accounts.store.accounts import AccountRow


class NeedProfilePublic(BaseModel):
    qualification_level: int
    employment_status: str
    need_flags: list[str]


class AccountPublic(BaseModel):
    account_id: uuid.UUID
    agency_id: str
    status: Literal["active", "suspended", "closed"]
    status_reason: str | None
    country: str
    region: str
    birth_year: int
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


async def public(session: AsyncSession, row: AccountRow, *, reveal: bool = True) -> AccountPublic:
    return AccountPublic(
        account_id=row.account_id,
        agency_id=row.agency_id,
        status=row.status,
        status_reason=row.status_reason,
        country=row.country,
        region=row.region,
        birth_year=row.birth_year,
        need_profile=NeedProfilePublic(
            qualification_level=row.qualification_level,
            employment_status=row.employment_status,
            need_flags=list(row.need_flags),
        ),
        personal=await personal_data(session, row) if reveal else None,
        personal_data_erased=row.erased_at is not None,
        personal_data_withheld=not reveal and row.erased_at is None,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
    )
