"""Provider rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain.providers import Provider
from shared.db import fetch_one, locked, update_row

COLUMNS = (
    "provider_id, agency_id, name, country, registration_number, qa_scheme, qa_valid_until, "
    "iban, bic, status, status_reason, status_note, registered_at, updated_at"
)


@dataclass(frozen=True)
class ProviderRow:
    provider_id: uuid.UUID
    agency_id: str
    name: str
    country: str
    registration_number: str
    qa_scheme: str
    qa_valid_until: date
    iban: str
    bic: str
    status: str
    status_reason: str | None
    status_note: str | None
    registered_at: datetime
    updated_at: datetime

    def domain(self) -> Provider:
        return Provider(
            provider_id=str(self.provider_id),
            status=self.status,  # type: ignore[arg-type]
            qa_scheme=self.qa_scheme,
            qa_valid_until=self.qa_valid_until,
        )


async def insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert unless (country, registration number) is taken; True when inserted."""
    inserted = await session.scalar(
        text(
            "INSERT INTO catalogue.providers (provider_id, agency_id, name, country, "
            "registration_number, qa_scheme, qa_valid_until, iban, bic, contact_email, "
            "registered_at, updated_at) VALUES (:provider_id, :agency_id, :name, :country, "
            ":registration_number, :qa_scheme, :qa_valid_until, :iban, :bic, :contact_email, "
            ":registered_at, :registered_at) ON CONFLICT (country, registration_number) DO NOTHING "
            "RETURNING provider_id"
        ),
        row,
    )
    return inserted is not None


async def contact_email(session: AsyncSession, provider_id: uuid.UUID) -> str | None:
    """Where the provider's messages go (None: nowhere)."""
    found: str | None = await session.scalar(
        text("SELECT contact_email FROM catalogue.providers WHERE provider_id = :p"),
        {"p": provider_id},
    )
    return found


async def id_by_registration(
    session: AsyncSession, country: str, registration_number: str
) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        text(
            "SELECT provider_id FROM catalogue.providers "
            "WHERE country = :c AND registration_number = :r"
        ),
        {"c": country, "r": registration_number},
    )
    return found


async def get(
    session: AsyncSession, provider_id: uuid.UUID, *, lock: bool = False
) -> ProviderRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.providers WHERE provider_id = :p"
    return await fetch_one(session, ProviderRow, locked(sql, lock), {"p": provider_id})


async def update(session: AsyncSession, provider_id: uuid.UUID, **fields: Any) -> None:
    await update_row(session, "catalogue.providers", "provider_id", provider_id, **fields)
