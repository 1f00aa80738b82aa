"""The funders' books, reconciled by verify: each budget's stream against its projection
row, and for each funder and year, the top-up lots its budget paid for against the budget's
draws (every lot drew exactly its amount, every draw names such a lot; a budget's draws
never exceed it, which folding its stream already asserts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from services.ledger.domain import WalletState
from services.ledger.domain.budgets import BudgetState
from shared.events.budgets import BudgetDrawn, budget_id_of

BUDGET_FIGURES = ("funder_id", "year", "amount", "drawn", "draws", "version")


def budget_mismatches(
    stream: uuid.UUID, position: int, state: BudgetState, head_hash: str, row: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Where the budget's projection row disagrees with its stream."""
    where = {"stream": str(stream), "position": position}
    if row is None:
        return [{**where, "problem": "no budget projection for this stream"}]
    out = [
        {**where, "problem": f"budget.{name} is {row[name]}, events give {getattr(state, name)}"}
        for name in BUDGET_FIGURES
        if row[name] != getattr(state, name)
    ]
    if row["head_hash"] != head_hash:
        out.append({**where, "problem": "budget.head_hash is not the stream's last hash"})
    return out


@dataclass
class FunderBooks:
    """What the wallets' lots and the budgets' draws say each funder granted."""

    lots: dict[uuid.UUID, tuple[uuid.UUID, int, uuid.UUID]] = field(default_factory=dict)
    draws: dict[uuid.UUID, tuple[uuid.UUID, int, uuid.UUID]] = field(default_factory=dict)
    budgets: dict[uuid.UUID, BudgetState] = field(default_factory=dict)

    def note_wallet(self, stream: uuid.UUID, state: WalletState) -> None:
        """The top-up lots drawn from a budget (a top-up lot names its budget's year)."""
        for lot in state.lots.values():
            if lot.kind == "top_up" and lot.year is not None:
                self.lots[lot.lot_id] = (budget_id_of(lot.funder_id, lot.year), lot.amount, stream)

    def note_draw(self, event: BudgetDrawn) -> None:
        self.draws[event.lot_id] = (event.budget_id, event.amount, event.account_id)

    def note_budget(self, state: BudgetState) -> None:
        if state.budget_id is not None:
            self.budgets[state.budget_id] = state

    def merge(self, other: FunderBooks) -> None:
        """Add what ``other`` noted (of other streams)."""
        self.lots.update(other.lots)
        self.draws.update(other.draws)
        self.budgets.update(other.budgets)

    def mismatches(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for lot_id, (budget, amount, account) in self.lots.items():
            drawn = self.draws.get(lot_id)
            if drawn is None:
                out.append(_problem(account, f"lot {lot_id} drew nothing from its budget {budget}"))
            elif drawn != (budget, amount, account):
                out.append(
                    _problem(account, f"lot {lot_id} of {amount} drew {drawn[1]} from {drawn[0]}")
                )
        for lot_id, (budget, amount, _) in self.draws.items():
            if lot_id not in self.lots:
                out.append(_problem(budget, f"draw of {amount} for lot {lot_id}: no such lot"))
        for budget_id, state in self.budgets.items():
            if state.drawn > state.amount:
                out.append(_problem(budget_id, f"drawn {state.drawn} of {state.amount}"))
        return out

    def summary(self) -> list[dict[str, Any]]:
        """Per funder and year: the budget, what was drawn, what its lots were granted."""
        granted: dict[uuid.UUID, int] = {}
        for budget, amount, _ in self.lots.values():
            granted[budget] = granted.get(budget, 0) + amount
        return [
            {
                "funder_id": s.funder_id,
                "year": s.year,
                "budget": s.amount,
                "drawn": s.drawn,
                "lots_granted": granted.get(budget_id, 0),
            }
            for budget_id, s in sorted(
                self.budgets.items(), key=lambda kv: (kv[1].funder_id or "", kv[1].year or 0)
            )
        ]


def _problem(stream: uuid.UUID, problem: str) -> dict[str, Any]:
    return {"stream": str(stream), "position": None, "problem": problem}


__all__ = ["FunderBooks", "budget_mismatches"]
