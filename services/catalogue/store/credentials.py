"""Issued credentials: the signed document as issued, and its revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all, fetch_one, locked

COLUMNS = (
    "credential_id, enrolment_id, account_id, course_id, course_version, provider_id, "
    "document, issued_at, revoked_at, revocation_reason, key_id, status_list, status_index, "
    "elm_document, kind"
)


@dataclass(frozen=True)
class CredentialRow:
    credential_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    course_id: uuid.UUID
    course_version: int
    provider_id: uuid.UUID
    document: str
    issued_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    key_id: str | None = None
    status_list: int | None = None
    status_index: int | None = None
    elm_document: str | None = None
    # ``completion`` of training, or ``validation`` of prior learning
    kind: str = "completion"


async def insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert unless a credential exists for the enrolment; True when inserted."""
    inserted = await session.scalar(
        text(
            "INSERT INTO catalogue.credentials (credential_id, enrolment_id, account_id, "
            "course_id, course_version, provider_id, document, issued_at, key_id, status_list, "
            "status_index, elm_document, kind) VALUES "
            "(:credential_id, :enrolment_id, :account_id, :course_id, :course_version, "
            ":provider_id, :document, :issued_at, :key_id, :status_list, :status_index, "
            ":elm_document, :kind) ON CONFLICT (enrolment_id) DO NOTHING "
            "RETURNING credential_id"
        ),
        row,
    )
    return inserted is not None


async def get(
    session: AsyncSession, credential_id: uuid.UUID, *, lock: bool = False
) -> CredentialRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.credentials WHERE credential_id = :c"
    return await fetch_one(session, CredentialRow, locked(sql, lock), {"c": credential_id})


async def by_enrolment(session: AsyncSession, enrolment_id: uuid.UUID) -> CredentialRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.credentials WHERE enrolment_id = :e"
    return await fetch_one(session, CredentialRow, sql, {"e": enrolment_id})


async def for_account(session: AsyncSession, account_id: uuid.UUID) -> list[CredentialRow]:
    sql = (
        f"SELECT {COLUMNS} FROM catalogue.credentials WHERE account_id = :a "
        "ORDER BY issued_at, credential_id"
    )
    return await fetch_all(session, CredentialRow, sql, {"a": account_id})


async def revoke(
    session: AsyncSession, credential_id: uuid.UUID, reason: str, now: datetime
) -> None:
    await session.execute(
        text(
            "UPDATE catalogue.credentials SET revoked_at = :now, revocation_reason = :reason "
            "WHERE credential_id = :c"
        ),
        {"c": credential_id, "reason": reason, "now": now},
    )
