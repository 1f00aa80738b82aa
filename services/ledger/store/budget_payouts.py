"""SQL of budgets paying claims: whether a budget's stream already paid a claim."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.leave import BudgetPaidOut


async def paid(session: AsyncSession, budget_id: uuid.UUID, claim_id: uuid.UUID) -> bool:
    """Whether the budget's stream holds a payment of ``claim_id`` (read under the budget's
    row lock, so two deliveries of one claim cannot both pay it)."""
    found = await session.scalar(
        text(
            "SELECT 1 FROM ledger.events WHERE stream_id = :b AND type = :t "
            "AND data->>'claim_id' = :c LIMIT 1"
        ),
        {"b": budget_id, "t": BudgetPaidOut.cloudevent_type(), "c": str(claim_id)},
    )
    return found is not None
