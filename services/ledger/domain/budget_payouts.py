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

from .budgets import BudgetExceeded, BudgetNotSet, BudgetState, evolve_budget


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
    if state.version == 0 or state.budget_id is None or state.funder_id is None:
        raise BudgetNotSet("the funder has no approved budget for this year")
    assert state.year is not None
    if amount > state.left:
        raise BudgetExceeded(
            f"the payment of {amount} exceeds what is left of the budget of {state.year} "
            f"({state.left})"
        )
    event = BudgetPaidOut(
        budget_id=state.budget_id,
        funder_id=state.funder_id,
        year=state.year,
        occurred_at=now,
        claim_id=claim_id,
        payee_id=payee_id,
        amount=amount,
    )
    evolve_budget(state, event)
    return [event]


__all__ = ["pay_out"]
