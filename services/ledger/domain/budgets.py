"""A funder's yearly budget as a ledger account: its state, folding its events, and the two
decisions on it (set what may be granted, draw a lot's amount).

Pure, like the wallet's rules. The identity, asserted after every event: ``0 <= drawn <=
amount``. A draw past what is left is refused (``BudgetExceeded``) and changes nothing; a
budget is never set below what was already drawn (``BudgetBelowDrawn``). A payment the
budget makes to a payee outside the wallets (``BudgetPaidOut``, decided by
:mod:`.budget_payouts`) draws on it like a lot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.events.budgets import BudgetDrawn, BudgetEvent, BudgetSet
from shared.events.leave import BudgetPaidOut

from .errors import InvariantViolation, LedgerError


class BudgetNotSet(LedgerError):
    """The funder has no approved budget for that year."""

    code = "no_budget"
    kind = "conflict"


class BudgetExceeded(LedgerError):
    """The grant would take more than what is left of the funder's budget."""

    code = "budget_exceeded"
    kind = "conflict"


class BudgetBelowDrawn(LedgerError):
    """A budget cannot be set below what the funder already granted from it."""

    code = "budget_below_drawn"
    kind = "conflict"


@dataclass(frozen=True, slots=True)
class BudgetState:
    budget_id: uuid.UUID | None = None
    funder_id: str | None = None
    year: int | None = None
    amount: int = 0
    drawn: int = 0
    draws: int = 0
    version: int = 0

    @property
    def left(self) -> int:
        return self.amount - self.drawn


def evolve_budget(state: BudgetState, event: BudgetEvent) -> BudgetState:
    """The budget after ``event``; ``InvariantViolation`` if it cannot apply."""
    if state.budget_id is not None and event.budget_id != state.budget_id:
        raise InvariantViolation(f"event for budget {event.budget_id} in another stream")
    state = replace(
        state,
        budget_id=event.budget_id,
        funder_id=event.funder_id,
        year=event.year,
        version=state.version + 1,
    )
    match event:
        case BudgetSet():
            state = replace(state, amount=event.amount)
        case BudgetDrawn() | BudgetPaidOut():
            if state.version == 1:
                raise InvariantViolation(f"budget {event.budget_id} drawn before it was set")
            state = replace(state, drawn=state.drawn + event.amount, draws=state.draws + 1)
        case _:
            raise InvariantViolation(f"not a budget event: {type(event).__name__}")
    if not 0 <= state.drawn <= state.amount:
        raise InvariantViolation(f"budget {state.budget_id}: drawn {state.drawn} of {state.amount}")
    return state


def replay_budget(events: Iterable[BudgetEvent], state: BudgetState | None = None) -> BudgetState:
    state = state if state is not None else BudgetState()
    for e in events:
        state = evolve_budget(state, e)
    return state


def set_budget(
    state: BudgetState,
    *,
    budget_id: uuid.UUID,
    funder_id: str,
    year: int,
    amount: int,
    approval_id: uuid.UUID,
    now: datetime,
) -> list[BudgetEvent]:
    """What setting the budget to ``amount`` (in total) decides."""
    if amount < state.drawn:
        raise BudgetBelowDrawn(
            f"the budget of {year} cannot be {amount}: {state.drawn} was already granted"
        )
    if state.version and state.amount == amount:
        return []
    event = BudgetSet(
        budget_id=budget_id,
        funder_id=funder_id,
        year=year,
        occurred_at=now,
        amount=amount,
        approval_id=approval_id,
    )
    evolve_budget(state, event)
    return [event]


def drawing(state: BudgetState, amount: int, what: str) -> dict[str, Any]:
    """The budget's part of an event drawing ``amount`` on it (its id, funder and year):
    refused without an approved budget, and past what is left (``what``: the draw, named)."""
    if state.version == 0 or state.budget_id is None or state.funder_id is None:
        raise BudgetNotSet("the funder has no approved budget for this year")
    assert state.year is not None
    if amount > state.left:
        raise BudgetExceeded(
            f"{what} of {amount} exceeds what is left of the budget of {state.year} ({state.left})"
        )
    return {"budget_id": state.budget_id, "funder_id": state.funder_id, "year": state.year}


def draw(
    state: BudgetState,
    *,
    lot_id: uuid.UUID,
    account_id: uuid.UUID,
    amount: int,
    now: datetime,
    rule_id: uuid.UUID | None = None,
    enrolment_id: uuid.UUID | None = None,
) -> list[BudgetEvent]:
    """What a lot of ``amount`` drawing on the budget decides (a co-funding rule's payment
    names the rule and the enrolment); refused past what is left."""
    event = BudgetDrawn(
        **drawing(state, amount, "the grant"),
        occurred_at=now,
        lot_id=lot_id,
        account_id=account_id,
        amount=amount,
        rule_id=rule_id,
        enrolment_id=enrolment_id,
    )
    evolve_budget(state, event)
    return [event]


__all__ = [
    "BudgetBelowDrawn",
    "BudgetExceeded",
    "BudgetNotSet",
    "BudgetState",
    "draw",
    "drawing",
    "evolve_budget",
    "replay_budget",
    "set_budget",
]
