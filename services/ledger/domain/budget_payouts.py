"""A funder's budget paying a claim directly to a payee (the leave fund paying an employer's
wage compensation for training leave): the draw happens in the budget's stream, under the
same rule as a lot's (never past what is left, refused without an approved budget), and a
budget pays one claim once.

Pure, like :mod:`.budgets`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.events.budgets import BudgetEvent
from shared.events.leave import BudgetPaidOut

from .budgets import BudgetState, drawing, evolve_budget


def pay_out(
    state: BudgetState,
    *,
    claim_id: uuid.UUID,
    payee_id: str,
    amount: int,
    paid: bool,
    now: datetime,
) -> list[BudgetEvent]:
    """What paying ``amount`` for ``claim_id`` to ``payee_id`` decides (``paid``: the budget
    paid this claim already, so nothing more is drawn); refused past what is left."""
    if paid:
        return []
    event = BudgetPaidOut(
        **drawing(state, amount, "the payment"),
        occurred_at=now,
        claim_id=claim_id,
        payee_id=payee_id,
        amount=amount,
    )
    evolve_budget(state, event)
    return [event]


__all__ = ["pay_out"]
