"""SQL of enrolments and the reservations that hold their credit: the provider's recent
proposals (the velocity rule), and proposals due to expire."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.enrolments import AWAITING_LEARNER


async def due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Proposals awaiting the learner past their deadline, locked (others skip them)."""
    rows = await session.execute(
        text(
            "SELECT enrolment_id FROM payments.enrolments "
            "WHERE status = ANY(:awaiting) "
            "AND expires_at <= :now ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"now": now, "n": limit, "awaiting": list(AWAITING_LEARNER)},
    )
    return [r.enrolment_id for r in rows]


async def due_for_time_out(session: AsyncSession, before: datetime, limit: int) -> list[uuid.UUID]:
    """Enrolments still waiting for the ledger's answer since before ``before``, locked."""
    rows = await session.execute(
        text(
            "SELECT enrolment_id FROM payments.enrolments WHERE status = 'reserving' "
            "AND updated_at <= :before ORDER BY updated_at LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"before": before, "n": limit},
    )
    return [r.enrolment_id for r in rows]
