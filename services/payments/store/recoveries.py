"""SQL of recoveries and their nettings against payouts."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.recoveries import Netting, Recovery
from services.payments.store.rows import many


async def open_recoveries(session: AsyncSession, provider_id: str) -> list[Recovery]:
    """What the provider still owes back, oldest first, locked until the transaction ends."""
    return await many(
        session,
        Recovery,
        "SELECT * FROM payments.recoveries WHERE provider_id = :p AND status = 'open' "
        "ORDER BY created_at, recovery_id FOR UPDATE",
        {"p": provider_id},
    )


async def add_netting(session: AsyncSession, netting: Netting) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.recovery_nettings "
            "(recovery_id, payout_id, claim_id, amount, live, created_at) "
            "VALUES (:recovery_id, :payout_id, :claim_id, :amount, :live, :created_at)"
        ),
        {
            "recovery_id": netting.recovery_id,
            "payout_id": netting.payout_id,
            "claim_id": netting.claim_id,
            "amount": netting.amount,
            "live": netting.live,
            "created_at": netting.created_at,
        },
    )


async def nettings_of(session: AsyncSession, payout_id: uuid.UUID) -> list[Netting]:
    """The recoveries set against the payout, oldest recovery first (the order they are
    taken from its lines)."""
    return await many(
        session,
        Netting,
        "SELECT n.* FROM payments.recovery_nettings n JOIN payments.recoveries r "
        "USING (recovery_id) WHERE n.payout_id = :p ORDER BY r.created_at, n.recovery_id",
        {"p": payout_id},
    )


async def end_nettings(session: AsyncSession, payout_id: uuid.UUID) -> None:
    """The payout was cancelled or failed: its nettings recover nothing."""
    await session.execute(
        text("UPDATE payments.recovery_nettings SET live = false WHERE payout_id = :p"),
        {"p": payout_id},
    )


async def recovery(session: AsyncSession, recovery_id: uuid.UUID) -> Recovery | None:
    found = await many(
        session,
        Recovery,
        "SELECT * FROM payments.recoveries WHERE recovery_id = :r FOR UPDATE",
        {"r": recovery_id},
    )
    return found[0] if found else None


async def pending_elsewhere(
    session: AsyncSession, recovery_id: uuid.UUID, payout_id: uuid.UUID
) -> bool:
    """Whether another payout not settled yet holds part of the recovery."""
    found = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM payments.recovery_nettings n JOIN payments.payouts p "
            "USING (payout_id) WHERE n.recovery_id = :r AND n.payout_id <> :p AND n.live "
            "AND p.status <> 'settled')"
        ),
        {"r": recovery_id, "p": payout_id},
    )
    return bool(found)
