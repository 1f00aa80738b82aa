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
    in the same transaction as its ``CreditsGranted``. A co-funding rule's payment names the
    rule (``rule_id``) and the enrolment it paid the shortfall of (``enrolment_id``)."""

    lot_id: uuid.UUID
    account_id: uuid.UUID
    amount: Annotated[int, Field(strict=True, gt=0)]
    rule_id: uuid.UUID | None = None
    enrolment_id: uuid.UUID | None = None


@event("ledger.CofundingRuleAdopted")
class CofundingRuleAdopted(Event):
    """A funder's co-funding rule came into force (finance approved it, ``approval_id``):
    from then on, in ``year``, the shortfall of each matching enrolment is paid from the
    funder's budget of that year, ``share`` percent of it (all when not set), at most
    ``cap`` per enrolment. Criteria not set match every enrolment."""

    rule_id: uuid.UUID
    funder_id: FunderId
    year: int = Field(ge=2000, le=2200)
    share: int | None = Field(default=None, ge=1, le=100)
    cap: Annotated[int, Field(strict=True, gt=0)] | None = None
    employer_id: str | None = None
    region: str | None = None
    isced_prefix: str | None = Field(default=None, pattern=r"^[0-9]{2,4}$")
    eqf_min: int | None = Field(default=None, ge=1, le=8)
    eqf_max: int | None = Field(default=None, ge=1, le=8)
    approval_id: uuid.UUID
    occurred_at: UtcDatetime

    def aggregate_id(self) -> str:
        return self.funder_id


__all__ = [
    "FUNDER_ID_PATTERN",
    "BudgetDrawn",
    "BudgetEvent",
    "BudgetSet",
    "CofundingRuleAdopted",
    "FunderId",
    "budget_id_of",
]
