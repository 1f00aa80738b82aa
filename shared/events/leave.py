"""Events of paid training leave: payments' steps (a learner in work asks leave for an
enrolment's sessions, the employer approves or refuses it before a deadline or lets it lapse,
and on completion claims wage compensation from the leave fund), the ledger's funder
registrations payments keeps a read model of, and the ledger's answer to a compensation:
paid from the leave fund's budget (``BudgetPaidOut``, in the budget's stream) or refused.

Ids, codes, hours and amounts only: the employer's note on a decision stays in payments'
table, and the dates of leave are not carried.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from shared.events.base import Event, UtcDatetime, event
from shared.events.budgets import BudgetEvent, FunderId

Hours = Annotated[int, Field(strict=True, gt=0, le=2_000)]
Cents = Annotated[int, Field(strict=True, gt=0)]

# why an employer refuses leave (codes; a free-text note stays in payments' table)
LeaveRefusalCode = Literal[
    "service_continuity",
    "staffing_shortage",
    "not_job_related",
    "notice_too_short",
    "annual_entitlement_used",
    "other",
]
# why an employer grants it
LeaveApprovalCode = Literal[
    "statutory_entitlement", "training_plan", "collective_agreement", "other"
]


class _LeaveEvent(Event):
    request_id: uuid.UUID
    enrolment_id: uuid.UUID
    employer_funder_id: FunderId

    def aggregate_id(self) -> str:
        return str(self.request_id)


@event("payments.LeaveRequested")
class LeaveRequested(_LeaveEvent):
    """The learner of ``account_id`` asks leave for ``hours`` of the enrolment's sessions,
    over ``days`` working days; the employer decides by ``decide_by`` or the request lapses."""

    account_id: uuid.UUID
    hours: Hours
    days: int = Field(ge=1)
    decide_by: datetime


@event("payments.LeaveApproved")
class LeaveApproved(_LeaveEvent):
    """The employer granted the leave (paid, for ``hours``)."""

    hours: Hours
    reason_code: LeaveApprovalCode


@event("payments.LeaveRefused")
class LeaveRefused(_LeaveEvent):
    """The employer refused the leave; the enrolment is untouched."""

    reason_code: LeaveRefusalCode


@event("payments.LeaveLapsed")
class LeaveLapsed(_LeaveEvent):
    """The employer did not answer by the deadline: no leave; the enrolment is untouched."""


@event("payments.LeaveCompensationClaimed")
class LeaveCompensationClaimed(_LeaveEvent):
    """The training completed, the employer claims wage compensation for the hours of
    leave: ``amount`` (``hours`` x ``hourly_rate``, at most the cap) from the budget of
    ``fund_id`` for ``year``, to be paid to the employer's payee ``payee_id`` under the
    claim ``claim_id``. The ledger pays it from the budget (``BudgetPaidOut``) or refuses
    (``BudgetPayoutRefused``)."""

    claim_id: uuid.UUID
    payee_id: str = Field(min_length=1, max_length=120)
    fund_id: FunderId
    year: int = Field(ge=2000, le=2200)
    hours: Hours
    hourly_rate: Cents
    amount: Cents


@event("payments.LeaveCompensationCaptured")
class LeaveCompensationCaptured(_LeaveEvent):
    """The leave fund's budget paid the compensation: its claim is payable to the employer."""

    claim_id: uuid.UUID
    amount: Cents


@event("payments.LeaveCompensationRefused")
class LeaveCompensationRefused(_LeaveEvent):
    """The ledger refused the compensation (``no_budget``, ``budget_exceeded``): nothing is
    paid, the claim is rejected and the employer may claim again."""

    claim_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=60)


# --- the ledger -----------------------------------------------------------------------------


@event("ledger.FunderRegistered")
class FunderRegistered(Event):
    """A funder was registered (its name stays in the ledger's funders table)."""

    funder_id: FunderId
    kind: Literal["employer", "region", "sector_fund", "state"]
    occurred_at: UtcDatetime

    def aggregate_id(self) -> str:
        return self.funder_id


@event("ledger.BudgetPaidOut")
class BudgetPaidOut(BudgetEvent):
    """The budget paid ``amount`` to a payee outside the wallets (payments' claim
    ``claim_id``, paid to ``payee_id``), drawn in the same transaction and never past what
    is left; a budget pays a claim once."""

    claim_id: uuid.UUID
    payee_id: str = Field(min_length=1, max_length=120)
    amount: Cents


@event("ledger.BudgetPayoutRefused")
class BudgetPayoutRefused(Event):
    """The budget of ``funder_id`` for ``year`` did not pay the claim (``reason``:
    ``no_budget``, ``budget_exceeded``); nothing was drawn."""

    claim_id: uuid.UUID
    funder_id: FunderId
    year: int = Field(ge=2000, le=2200)
    amount: Cents
    reason: str = Field(min_length=1, max_length=60)
    occurred_at: UtcDatetime

    def aggregate_id(self) -> str:
        return str(self.claim_id)


__all__ = [
    "BudgetPaidOut",
    "BudgetPayoutRefused",
    "FunderRegistered",
    "LeaveApprovalCode",
    "LeaveApproved",
    "LeaveCompensationCaptured",
    "LeaveCompensationClaimed",
    "LeaveCompensationRefused",
    "LeaveLapsed",
    "LeaveRefusalCode",
    "LeaveRefused",
    "LeaveRequested",
]
