"""SQL of payees (where each provider is paid): the details registered with the provider,
approved changes (unverified until finance records the bank's check), verification."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.payees import CHANGED, Payee
from services.payments.store.rows import get


async def register_payee(
    session: AsyncSession,
    provider_id: str,
    *,
    name: str,
    iban: str,
    bic: str | None,
    actor: str,
    now: datetime,
) -> None:
    """The bank account a provider was registered with; never over details already held
    (those change only through an approved proposal)."""
    await session.execute(
        text(
            "INSERT INTO payments.payees (provider_id, name, iban, bic, updated_by, updated_at, "
            "effective_at) VALUES (:p, :n, :i, :b, :a, :t, :t) "
            "ON CONFLICT (provider_id) DO NOTHING"
        ),
        {"p": provider_id, "n": name, "i": iban, "b": bic, "a": actor, "t": now},
    )


async def payee(session: AsyncSession, provider_id: str, *, lock: bool = False) -> Payee | None:
    return await get(session, Payee, provider_id, lock=lock)


async def change_payee(
    session: AsyncSession,
    provider_id: str,
    *,
    name: str,
    iban: str,
    bic: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Approved new bank details: they apply from ``now``, unverified."""
    await session.execute(
        text(
            "INSERT INTO payments.payees (provider_id, name, iban, bic, updated_by, updated_at, "
            "source, effective_at) VALUES (:p, :n, :i, :b, :a, :t, :changed, :t) "
            "ON CONFLICT (provider_id) DO UPDATE SET name = EXCLUDED.name, iban = EXCLUDED.iban, "
            "bic = EXCLUDED.bic, updated_by = EXCLUDED.updated_by, "
            "updated_at = EXCLUDED.updated_at, source = EXCLUDED.source, "
            "effective_at = EXCLUDED.effective_at, verified_at = NULL, verified_by = NULL"
        ),
        {
            "p": provider_id,
            "n": name,
            "i": iban,
            "b": bic,
            "a": actor,
            "t": now,
            "changed": CHANGED,
        },
    )


async def verify_payee(session: AsyncSession, provider_id: str, actor: str, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE payments.payees SET verified_at = :t, verified_by = :a WHERE provider_id = :p"
        ),
        {"p": provider_id, "a": actor, "t": now},
    )
