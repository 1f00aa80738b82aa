"""SQL of payees (where each provider is paid): the details registered with the provider,
approved changes (unverified until finance records the bank's check), verification."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.payees import CHANGED, REGISTERED, Payee, PayeeSource
from services.payments.store.rows import get

_INSERT = (
    "INSERT INTO payments.payees (provider_id, name, iban, bic, updated_by, updated_at, "
    "source, effective_at) VALUES (:p, :n, :i, :b, :a, :t, :s, :t) ON CONFLICT (provider_id) "
)
# a registration never replaces details already held (those change only through an approved
# proposal); an approved change replaces them, unverified
ON_CONFLICT: dict[PayeeSource, str] = {
    REGISTERED: "DO NOTHING",
    CHANGED: "DO UPDATE SET name = EXCLUDED.name, iban = EXCLUDED.iban, bic = EXCLUDED.bic, "
    "updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at, "
    "source = EXCLUDED.source, effective_at = EXCLUDED.effective_at, "
    "verified_at = NULL, verified_by = NULL",
}


async def put_payee(
    session: AsyncSession,
    provider_id: str,
    source: PayeeSource,
    *,
    name: str,
    iban: str,
    bic: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Bank details effective from ``now``: those the provider was registered with
    (``registration``), or approved new ones (``change``)."""
    await session.execute(
        text(_INSERT + ON_CONFLICT[source]),
        {"p": provider_id, "n": name, "i": iban, "b": bic, "a": actor, "t": now, "s": source},
    )


async def payee(session: AsyncSession, provider_id: str, *, lock: bool = False) -> Payee | None:
    return await get(session, Payee, provider_id, lock=lock)


async def verify_payee(session: AsyncSession, provider_id: str, actor: str, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE payments.payees SET verified_at = :t, verified_by = :a WHERE provider_id = :p"
        ),
        {"p": provider_id, "a": actor, "t": now},
    )
