"""A funder's budget as a pure aggregate: set under four eyes, drawn by lots, never past it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain.budgets import (
    BudgetBelowDrawn,
    BudgetExceeded,
    BudgetNotSet,
    BudgetState,
    draw,
    replay_budget,
    set_budget,
)
from services.ledger.domain.errors import InvariantViolation
from shared.events.budgets import BudgetDrawn, BudgetSet, budget_id_of

NOW = datetime(2030, 3, 1, tzinfo=UTC)
FUNDER = "emp-1"
BUDGET = budget_id_of(FUNDER, 2030)


def funded(amount: int) -> BudgetState:
    events = set_budget(
        BudgetState(),
        budget_id=BUDGET,
        funder_id=FUNDER,
        year=2030,
        amount=amount,
        approval_id=uuid.uuid4(),
        now=NOW,
    )
    return replay_budget(events)


def drawing(state: BudgetState, amount: int) -> BudgetState:
    events = draw(state, lot_id=uuid.uuid4(), account_id=uuid.uuid4(), amount=amount, now=NOW)
    return replay_budget(events, state)


def test_the_budget_id_is_the_funder_and_year() -> None:
    assert budget_id_of(FUNDER, 2030) == BUDGET
    assert budget_id_of(FUNDER, 2031) != BUDGET and budget_id_of("emp-2", 2030) != BUDGET


def test_nothing_is_drawn_before_a_budget_is_set() -> None:
    with pytest.raises(BudgetNotSet):
        draw(BudgetState(), lot_id=uuid.uuid4(), account_id=uuid.uuid4(), amount=1, now=NOW)


def test_a_draw_past_what_is_left_is_refused() -> None:
    state = drawing(funded(1_000), 600)
    assert (state.drawn, state.left, state.draws) == (600, 400, 1)
    with pytest.raises(BudgetExceeded):
        drawing(state, 401)
    assert drawing(state, 400).left == 0


def test_a_budget_is_never_set_below_what_was_drawn() -> None:
    state = drawing(funded(1_000), 600)
    with pytest.raises(BudgetBelowDrawn):
        set_budget(
            state,
            budget_id=BUDGET,
            funder_id=FUNDER,
            year=2030,
            amount=599,
            approval_id=uuid.uuid4(),
            now=NOW,
        )
    same = dict(budget_id=BUDGET, funder_id=FUNDER, year=2030, approval_id=uuid.uuid4(), now=NOW)
    assert set_budget(state, amount=1_000, **same) == []  # type: ignore[arg-type]
    raised = replay_budget(set_budget(state, amount=2_000, **same), state)  # type: ignore[arg-type]
    assert (raised.amount, raised.drawn, raised.version) == (2_000, 600, 3)


def test_a_stream_that_overspends_does_not_replay() -> None:
    common = dict(budget_id=BUDGET, funder_id=FUNDER, year=2030, occurred_at=NOW)
    stream = [
        BudgetSet(amount=100, approval_id=uuid.uuid4(), **common),  # type: ignore[arg-type]
        BudgetDrawn(lot_id=uuid.uuid4(), account_id=uuid.uuid4(), amount=101, **common),  # type: ignore[arg-type]
    ]
    with pytest.raises(InvariantViolation):
        replay_budget(stream)
    with pytest.raises(InvariantViolation):
        replay_budget(stream[1:])  # drawn before it was set


@given(st.integers(0, 10_000), st.lists(st.integers(1, 3_000), max_size=30))
def test_whatever_is_asked_drawn_never_exceeds_the_budget(budget: int, asks: list[int]) -> None:
    state = funded(budget)
    granted = 0
    for ask in asks:
        try:
            state = drawing(state, ask)
            granted += ask
        except BudgetExceeded:
            assert ask > state.left
    assert state.drawn == granted <= budget and state.left == budget - granted
