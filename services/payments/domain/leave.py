"""Paid training leave as a state machine: a learner in work asks their employer for leave
to attend an enrolment's sessions (``requested``, with a deadline: the decision window, and
never past the session's start); the employer approves or refuses it with a reason code
before the deadline, or the request ``lapsed`` in silence. Once the training completed, the
employer claims wage compensation for the hours of leave (``compensation_claimed``): a claim
of its own (milestone ``leave_compensation``, paid to the employer's payee) that the leave
fund's budget pays in the ledger (``compensated``; the claim is captured, then paid in a
payout run like any claim) or refuses (back to ``approved``: the employer may claim again).

A refused or lapsed leave changes nothing of the enrolment: the learner may still attend on
their own time.

The legal moves are written once in :data:`TRANSITIONS`; each decision takes the frozen
:class:`LeaveRequest` (and what the handler loaded) and returns the new request with the
events to publish. No I/O and no clock: ``now`` is passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from services.payments.config import LeaveConfig
from services.payments.domain import claims as claim_rules
from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import Invalid, PaymentsError
from services.payments.domain.machine import advance
from shared.events.base import Event
from shared.events.leave import (
    LeaveApprovalCode,
    LeaveApproved,
    LeaveCompensationCaptured,
    LeaveCompensationClaimed,
    LeaveCompensationRefused,
    LeaveLapsed,
    LeaveRefusalCode,
    LeaveRefused,
    LeaveRequested,
)

LeaveStatus = Literal[
    "requested", "approved", "refused", "lapsed", "compensation_claimed", "compensated"
]
LeaveMove = Literal["approve", "refuse", "lapse", "claim", "compensate", "refuse_compensation"]

# the legal moves, written once: a move, the statuses it leaves, the status it reaches
TRANSITIONS: dict[LeaveMove, tuple[frozenset[LeaveStatus], LeaveStatus]] = {
    "approve": (frozenset({"requested"}), "approved"),
    "refuse": (frozenset({"requested"}), "refused"),
    # the employer let the deadline pass
    "lapse": (frozenset({"requested"}), "lapsed"),
    # the training completed: the employer claims its wage compensation
    "claim": (frozenset({"approved"}), "compensation_claimed"),
    # the leave fund's budget paid the claim / refused it (the employer may claim again)
    "compensate": (frozenset({"compensation_claimed"}), "compensated"),
    "refuse_compensation": (frozenset({"compensation_claimed"}), "approved"),
}
AWAITING_DECISION: LeaveStatus = "requested"
# a request in these statuses stands: one per enrolment
LIVE: tuple[LeaveStatus, ...] = ("requested", "approved", "compensation_claimed", "compensated")
# leave is asked for an enrolment whose credit is reserved and not yet used up
ASKABLE: tuple[str, ...] = ("confirmed",)
# the employment statuses of a learner with an employer
IN_WORK: tuple[str, ...] = ("employed",)
EMPLOYER_KIND = "employer"
# the milestone of a compensation claim
COMPENSATION: Literal["leave_compensation"] = "leave_compensation"
PAYEE_PREFIX = "employer:"


@dataclass(frozen=True)
class LeaveRequest:
    """A leave request as stored (one row of ``payments.leave_requests``); ``note`` is the
    employer's free text on its decision, kept here only (never in an event)."""

    request_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    employer_funder_id: str
    hours: int
    dates: list[date]
    status: LeaveStatus
    decide_by: datetime
    requested_by: str
    requested_at: datetime
    updated_at: datetime
    reason_code: str | None = None
    note: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    claim_id: uuid.UUID | None = None
    compensation: int = 0
    compensation_refused: str | None = None
    compensated_at: datetime | None = None


Decided = tuple[LeaveRequest, list[Event]]


def moved(request: LeaveRequest, move: LeaveMove, now: datetime, **changes: Any) -> LeaveRequest:
    """``request`` after ``move`` (checked against :data:`TRANSITIONS`), with ``changes``."""
    return advance(TRANSITIONS, "leave request", request, move, now, **changes)


def employer_payee(funder_id: str) -> str:
    """The payee id an employer is paid under (its bank details, its payouts)."""
    return f"{PAYEE_PREFIX}{funder_id}"


def is_employer_payee(payee_id: str) -> bool:
    """Whether the payee is an employer's (paid for leave, never suspended like a provider)."""
    return payee_id.startswith(PAYEE_PREFIX)


def decision_deadline(config: LeaveConfig, now: datetime, starts_on: date) -> datetime:
    """The employer decides within the decision window, and before the session starts."""
    session_starts = datetime.combine(starts_on, time(), tzinfo=UTC)
    return min(now + timedelta(days=config.decision_days), session_starts)


def _ref(request: LeaveRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "enrolment_id": request.enrolment_id,
        "employer_funder_id": request.employer_funder_id,
    }


@dataclass(frozen=True)
class Asked:
    """What the learner asks: the employer, the hours of leave, the days they fall on."""

    employer_funder_id: str
    hours: int
    dates: Sequence[date]


@dataclass(frozen=True)
class Standing:
    """What the handler found: the learner's employment status, the employer's kind as the
    funders' read model has it (``None``: unknown), the course's workload in hours (``None``:
    unknown), whether a request of the enrolment stands already."""

    employment_status: str | None
    employer_kind: str | None
    workload_hours: int | None
    live_request: bool


def ask(
    config: LeaveConfig,
    enrolment: Enrolment,
    asked: Asked,
    standing: Standing,
    *,
    request_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> Decided:
    """The learner's request, checked: a confirmed enrolment, a learner in work, a
    registered employer, leave days inside the session, hours within the days and the
    course's workload, and time for the employer to decide before the session starts."""
    if enrolment.status not in ASKABLE:
        raise PaymentsError(
            "enrolment_not_confirmed",
            f"the enrolment is {enrolment.status}: leave is asked for a confirmed enrolment",
        )
    if standing.employment_status not in IN_WORK:
        raise PaymentsError("not_in_work", "leave is asked by a learner in work (employed)")
    if standing.employer_kind != EMPLOYER_KIND:
        raise Invalid(
            "employer_not_found",
            f"{asked.employer_funder_id} is not a registered funder of kind employer",
            field="employer_funder_id",
        )
    if standing.live_request:
        raise PaymentsError(
            "leave_already_requested", "a leave request of this enrolment stands already"
        )
    days = sorted(set(asked.dates))
    if not days or len(days) != len(asked.dates):
        raise Invalid("invalid_dates", "the days of leave, each once", field="dates")
    outside = [d for d in days if not enrolment.starts_on <= d <= enrolment.ends_on]
    if outside:
        raise Invalid(
            "date_outside_session",
            f"{outside[0]} is not a day of the session ({enrolment.starts_on} to "
            f"{enrolment.ends_on})",
            field="dates",
        )
    if asked.hours > config.max_hours_per_day * len(days):
        raise Invalid(
            "hours_exceed_days",
            f"{asked.hours} hours over {len(days)} days: at most {config.max_hours_per_day} a day",
            field="hours",
        )
    if standing.workload_hours is not None and asked.hours > standing.workload_hours:
        raise Invalid(
            "hours_exceed_workload",
            f"{asked.hours} hours: the course's workload is {standing.workload_hours}",
            field="hours",
        )
    decide_by = decision_deadline(config, now, enrolment.starts_on)
    if decide_by <= now:
        raise PaymentsError(
            "session_started", "the session has started: leave is asked before it starts"
        )
    request = LeaveRequest(
        request_id=request_id,
        enrolment_id=enrolment.enrolment_id,
        account_id=enrolment.account_id,
        employer_funder_id=asked.employer_funder_id,
        hours=asked.hours,
        dates=days,
        status=AWAITING_DECISION,
        decide_by=decide_by,
        requested_by=actor,
        requested_at=now,
        updated_at=now,
    )
    requested = LeaveRequested(
        **_ref(request),
        account_id=request.account_id,
        hours=request.hours,
        days=len(days),
        decide_by=decide_by,
    )
    return request, [requested]


def _open(request: LeaveRequest, now: datetime) -> None:
    """The employer may still decide: the request waits and its deadline has not passed."""
    if request.status != AWAITING_DECISION:
        raise PaymentsError("leave_decided", f"the leave request is {request.status}")
    if now >= request.decide_by:
        raise PaymentsError(
            "decision_deadline_passed",
            f"the employer had until {request.decide_by.isoformat()} to decide: the request lapsed",
        )


def _decided(
    request: LeaveRequest,
    move: LeaveMove,
    reason_code: str,
    note: str | None,
    actor: str,
    now: datetime,
) -> LeaveRequest:
    """The employer's answer before the deadline, with its reason code and note."""
    _open(request, now)
    return moved(
        request, move, now, reason_code=reason_code, note=note, decided_by=actor, decided_at=now
    )


def approve(
    request: LeaveRequest,
    reason_code: LeaveApprovalCode,
    note: str | None,
    actor: str,
    now: datetime,
) -> Decided:
    """The employer grants the leave before the deadline."""
    after = _decided(request, "approve", reason_code, note, actor, now)
    return after, [LeaveApproved(**_ref(after), hours=after.hours, reason_code=reason_code)]


def refuse(
    request: LeaveRequest,
    reason_code: LeaveRefusalCode,
    note: str | None,
    actor: str,
    now: datetime,
) -> Decided:
    """The employer refuses the leave before the deadline, with a reason code."""
    after = _decided(request, "refuse", reason_code, note, actor, now)
    return after, [LeaveRefused(**_ref(after), reason_code=reason_code)]


def due(request: LeaveRequest, now: datetime) -> bool:
    """Whether the request waits past its deadline (it lapses)."""
    return request.status == AWAITING_DECISION and now >= request.decide_by


def lapse(request: LeaveRequest, now: datetime) -> Decided:
    """A request its employer left unanswered past the deadline lapses (else unchanged)."""
    if not due(request, now):
        return request, []
    after = moved(request, "lapse", now, decided_at=now)
    return after, [LeaveLapsed(**_ref(after))]


def compensation_amount(config: LeaveConfig, hours: int) -> int:
    """The wage compensation for ``hours`` of leave: the hourly rate, at most the cap."""
    return min(hours * config.hourly_rate_cents, config.cap_cents)


def claim_compensation(
    config: LeaveConfig,
    request: LeaveRequest,
    enrolment: Enrolment,
    *,
    claim_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> tuple[LeaveRequest, Claim, list[Event]]:
    """The employer claims the wage compensation of an approved leave once the training
    completed: a claim to its payee, approved, whose capture the leave fund's budget
    decides in the ledger. Claimed once (409 ``compensation_claimed`` after)."""
    if request.status in ("compensation_claimed", "compensated"):
        raise PaymentsError("compensation_claimed", "the compensation was claimed already")
    if request.status != "approved":
        raise PaymentsError("leave_not_approved", f"the leave request is {request.status}")
    if enrolment.status != "completed":
        raise PaymentsError(
            "training_not_completed",
            f"the enrolment is {enrolment.status}: compensation is claimed once the training "
            "completed",
        )
    amount = compensation_amount(config, request.hours)
    payee_id = employer_payee(request.employer_funder_id)
    claim = Claim(
        claim_id=claim_id,
        enrolment_id=request.enrolment_id,
        provider_id=payee_id,
        milestone=COMPENSATION,
        evidence={
            "leave_request_id": str(request.request_id),
            "hours": request.hours,
            "hourly_rate": config.hourly_rate_cents,
            "capped": amount < request.hours * config.hourly_rate_cents,
        },
        status="approved",
        amount=amount,
        capture_requested=True,
        claimed_by=actor,
        claimed_at=now,
        decided_at=now,
        updated_at=now,
    )
    after = moved(
        request, "claim", now, claim_id=claim_id, compensation=amount, compensation_refused=None
    )
    claimed = LeaveCompensationClaimed(
        **_ref(after),
        claim_id=claim_id,
        payee_id=payee_id,
        fund_id=config.fund_id,
        year=now.year,
        hours=request.hours,
        hourly_rate=config.hourly_rate_cents,
        amount=amount,
    )
    return after, claim, [claimed]


def paid_out(
    request: LeaveRequest, claim: Claim, amount: int, now: datetime
) -> tuple[LeaveRequest, Claim, list[Event]]:
    """The leave fund's budget paid the claim: captured (payable in the next payout run),
    the request ``compensated``. An answer applied already changes nothing."""
    if claim.captured > 0 or request.status != "compensation_claimed":
        return request, claim, []
    captured = claim_rules.on_captured(claim, amount, now)
    after = moved(request, "compensate", now, compensated_at=now)
    event = LeaveCompensationCaptured(**_ref(after), claim_id=claim.claim_id, amount=amount)
    return after, captured, [event]


def payout_refused(
    request: LeaveRequest, claim: Claim, reason: str, now: datetime
) -> tuple[LeaveRequest, Claim, list[Event]]:
    """The ledger refused to pay the claim from the fund (no budget, not enough left):
    nothing is paid, the claim is rejected and the leave is ``approved`` again, so the
    employer may claim once the fund can pay."""
    if claim.status != "approved" or claim.captured > 0:
        return request, claim, []
    refused = claim_rules.capture_refused(claim, reason, now)
    rejected = claim_rules.moved(refused, "reject", now, capture_requested=False)
    if request.status != "compensation_claimed" or request.claim_id != claim.claim_id:
        return request, rejected, []
    after = moved(request, "refuse_compensation", now, compensation_refused=reason)
    event = LeaveCompensationRefused(**_ref(after), claim_id=claim.claim_id, reason=reason)
    return after, rejected, [event]


def seen(request: LeaveRequest, now: datetime) -> LeaveRequest:
    """The request as a reader sees it now: lapsed once its deadline passed unanswered
    (the sweep records it)."""
    return replace(request, status="lapsed") if due(request, now) else request
