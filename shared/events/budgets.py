"""Events of a funder's yearly budget, published by the ledger on the ``ledger`` topic.

A funder's budget for a year is a ledger account of its own: a stream in the ledger's event
store (its id derived from the funder and the year, :func:`budget_id_of`), chained by hash
like a wallet's. Finance approves what it may grant (``BudgetSet``); every top-up lot the
funder grants draws its amount from the budget in the same transaction (``BudgetDrawn``), so
that what a funder granted never exceeds what was approved and the books balance: for each
funder and year, the budget's draws add up to its top-up lots of that year.

Ids, codes and amounts only (a funder's name lives in the ledger's funders table).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from shared.events.base import Event, UtcDatetime, event

FUNDER_ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
FunderId = Annotated[str, Field(min_length=1, max_length=100, pattern=FUNDER_ID_PATTERN)]

_BUDGETS = uuid.UUID("5d0a9c1e-7d5b-4a5c-9a43-2f1c0f3b6a11")


def budget_id_of(funder_id: str, year: int) -> uuid.UUID:
    """The stream id of ``funder_id``'s budget for ``year`` (the same everywhere, always)."""
    return uuid.uuid5(_BUDGETS, f"{funder_id}:{year}")


class BudgetEvent(Event):
    """Base of a budget's events: keyed by the budget, stamped with the domain's clock."""

    budget_id: uuid.UUID
    funder_id: FunderId
    year: int = Field(ge=2000, le=2200)
    occurred_at: UtcDatetime

    def aggregate_id(self) -> str:
        return str(self.budget_id)


@event("ledger.BudgetSet")
class BudgetSet(BudgetEvent):
    """What the funder may grant in ``year``, in total (never below what it already drew),
    as the four-eyes approval ``approval_id`` set it."""

    amount: Annotated[int, Field(strict=True, ge=0)]
    approval_id: uuid.UUID


@event("ledger.BudgetDrawn")
class BudgetDrawn(BudgetEvent):
    """A top-up lot (``lot_id`` in ``account_id``'s wallet) drew ``amount`` from the budget,
    in the same transaction as its ``CreditsGranted``."""

    lot_id: uuid.UUID
    account_id: uuid.UUID
    amount: Annotated[int, Field(strict=True, gt=0)]


__all__ = [
    "FUNDER_ID_PATTERN",
    "BudgetDrawn",
    "BudgetEvent",
    "BudgetSet",
    "FunderId",
    "budget_id_of",
]
