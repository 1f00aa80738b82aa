"""The account rows: opening (one or many at once), reading, lifecycle and profile
updates, and the lookup of a person's account by national id hash."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.domain.accounts import Account
from services.accounts.store import keys
from shared.db import fetch_all, fetch_one, locked, update_row

COLUMNS = (
    "account_id, agency_id, country, region, qualification_level, employment_status, "
    "need_tier, employer_id, status, status_reason_code, status_note, personal_nonce, "
    "personal_ciphertext, erased_at, opened_at, updated_at"
)


@dataclass(frozen=True)
class AccountRow:
    """An account as stored. The personal data (names, contact, birth date, need flags) are
    only in ``personal_ciphertext``; after erasure what remains is the account, its agency,
    status and need profile (``country``, ``region`` and ``status_note`` are gone too)."""

    account_id: uuid.UUID
    agency_id: str
    country: str | None
    region: str | None
    qualification_level: int
    employment_status: str
    need_tier: str
    employer_id: str | None
    status: str
    status_reason_code: str | None
    status_note: str | None
    personal_nonce: bytes | None
    personal_ciphertext: bytes | None
    erased_at: datetime | None
    opened_at: datetime
    updated_at: datetime

    def domain(self, need_flags: Sequence[str] = ()) -> Account:
        """The account for its rules, with the need flags read from its personal data."""
        return Account(
            account_id=self.account_id,
            agency_id=self.agency_id,
            status=self.status,  # type: ignore[arg-type]
            qualification_level=self.qualification_level,
            employment_status=self.employment_status,  # type: ignore[arg-type]
            need_tier=self.need_tier,  # type: ignore[arg-type]
            need_flags=tuple(need_flags),
            erased=self.erased_at is not None,
            employer_id=self.employer_id,
        )


INSERT = (
    "INSERT INTO accounts.accounts (account_id, national_id_hash, agency_id, country, region, "
    "qualification_level, employment_status, need_tier, personal_nonce, personal_ciphertext, "
    "birth_year, opened_at, updated_at) "
)


async def insert_account(
    session: AsyncSession, row: dict[str, Any], wrapped: keys.WrappedKey
) -> bool:
    """Insert, with its wrapped data key, unless the national id hash exists; True when
    inserted."""
    inserted = await session.scalar(
        text(
            INSERT.replace(", opened_at, updated_at)", ", opened_at, updated_at, employer_id)")
            + "VALUES (:account_id, :national_id_hash, :agency_id, :country, :region, "
            ":qualification_level, :employment_status, :need_tier, :personal_nonce, "
            ":personal_ciphertext, :birth_year, :opened_at, :opened_at, :employer_id) "
            "ON CONFLICT (national_id_hash) DO NOTHING RETURNING account_id"
        ),
        row,
    )
    if inserted is None:
        return False
    await keys.insert_keys(session, [(row["account_id"], wrapped)])
    return True


async def insert_accounts(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert many accounts in one statement, skipping national ids that exist; the ids
    inserted. Their data keys go in with
    :func:`services.accounts.store.keys.insert_keys`."""
    if not rows:
        return set()
    # one lock order for every bulk insert, so that two imports never deadlock
    rows = sorted(rows, key=lambda r: str(r["national_id_hash"]))
    result = await session.execute(
        text(
            INSERT + "SELECT a, h, g, c, r, q, e, t, n, b, y, o, o FROM unnest("
            "CAST(:a AS uuid[]), CAST(:h AS text[]), CAST(:g AS text[]), "
            "CAST(:c AS text[]), CAST(:r AS text[]), CAST(:q AS smallint[]), "
            "CAST(:e AS text[]), CAST(:t AS text[]), CAST(:n AS bytea[]), CAST(:b AS bytea[]), "
            "CAST(:y AS smallint[]), CAST(:o AS timestamptz[])) "
            "AS t(a, h, g, c, r, q, e, t, n, b, y, o) "
            "ON CONFLICT (national_id_hash) DO NOTHING RETURNING account_id"
        ),
        {
            "a": [r["account_id"] for r in rows],
            "h": [r["national_id_hash"] for r in rows],
            "g": [r["agency_id"] for r in rows],
            "c": [r["country"] for r in rows],
            "r": [r["region"] for r in rows],
            "q": [r["qualification_level"] for r in rows],
            "e": [r["employment_status"] for r in rows],
            "t": [r["need_tier"] for r in rows],
            "n": [r["personal_nonce"] for r in rows],
            "b": [r["personal_ciphertext"] for r in rows],
            "y": [r["birth_year"] for r in rows],
            "o": [r["opened_at"] for r in rows],
        },
    )
    return set(result.scalars())


async def _by_hash(
    session: AsyncSession, national_id_hashes: list[str], column: str
) -> dict[str, tuple[uuid.UUID, str]]:
    if not national_id_hashes:
        return {}
    rows = await session.execute(
        text(
            f"SELECT national_id_hash, account_id, {column} AS other FROM accounts.accounts "
            "WHERE national_id_hash = ANY(:h)"
        ),
        {"h": national_id_hashes},
    )
    return {r.national_id_hash: (r.account_id, r.other) for r in rows}


async def account_ids_by_hash(
    session: AsyncSession, national_id_hashes: list[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """By national id hash: the existing account and the agency managing it."""
    return await _by_hash(session, national_id_hashes, "agency_id")


async def statuses_by_hash(
    session: AsyncSession, national_id_hashes: list[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """By national id hash: the existing account and its status."""
    return await _by_hash(session, national_id_hashes, "status")


async def account_id_by_hash(
    session: AsyncSession, national_id_hash: str
) -> tuple[uuid.UUID, str] | None:
    """The existing account for a national id hash and the agency managing it."""
    found = await account_ids_by_hash(session, [national_id_hash])
    return found.get(national_id_hash)


async def get(
    session: AsyncSession, account_id: uuid.UUID, *, lock: bool = False
) -> AccountRow | None:
    sql = f"SELECT {COLUMNS} FROM accounts.accounts WHERE account_id = :a"
    return await fetch_one(session, AccountRow, locked(sql, lock), {"a": account_id})


async def get_many(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AccountRow]:
    """The rows of ``account_ids`` that exist, by id (one statement)."""
    if not account_ids:
        return {}
    sql = f"SELECT {COLUMNS} FROM accounts.accounts WHERE account_id = ANY(:a)"
    rows = await fetch_all(session, AccountRow, sql, {"a": list(account_ids)})
    return {r.account_id: r for r in rows}


async def update(session: AsyncSession, account_id: uuid.UUID, **fields: Any) -> None:
    await update_row(session, "accounts.accounts", "account_id", account_id, **fields)


async def update_profile(session: AsyncSession, account: Account) -> None:
    await update(
        session,
        account.account_id,
        qualification_level=account.qualification_level,
        employment_status=account.employment_status,
        need_tier=account.need_tier,
        employer_id=account.employer_id,
    )


async def update_personal(
    session: AsyncSession, account_id: uuid.UUID, nonce: bytes, ciphertext: bytes
) -> None:
    await update(session, account_id, personal_nonce=nonce, personal_ciphertext=ciphertext)


async def mark_erased(session: AsyncSession, account_id: uuid.UUID) -> None:
    """Drop the encrypted personal data, the free-text note, where the person lives and their
    birth year, and note when (the key goes with
    :func:`services.accounts.store.keys.delete_key`)."""
    await session.execute(
        text(
            "UPDATE accounts.accounts SET personal_ciphertext = NULL, personal_nonce = NULL, "
            "status_note = NULL, country = NULL, region = NULL, birth_year = NULL, "
            "erased_at = now(), "
            "updated_at = now() WHERE account_id = :a"
        ),
        {"a": account_id},
    )


async def list_for_agency(
    session: AsyncSession, agency_id: str | None, after: uuid.UUID | None, limit: int
) -> list[AccountRow]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if agency_id is not None:
        clauses.append("agency_id = :agency")
        params["agency"] = agency_id
    if after is not None:
        clauses.append("account_id > :after")
        params["after"] = after
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT {COLUMNS} FROM accounts.accounts {where} ORDER BY account_id LIMIT :limit"
    return await fetch_all(session, AccountRow, sql, params)
