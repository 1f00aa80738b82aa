"""Payments rules as pure functions: who may enrol where, what the learner pays, what a claim
earns, what a cancellation keeps, what the fraud rules hold.

No I/O and no clock: the handlers load views of the read models and of the enrolment,
pass ``now``, and store what these functions decide. Each rule raises a
:class:`PaymentsError` (with a stable ``code``) or returns a decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from services.payments.config import PaymentsConfig
from shared.errors import DomainError

EnrolmentStatus = Literal[
    "awaiting_learner_confirmation",
    "held",
    "reserving",
    "awaiting_co_payment",
    "confirmed",
    "completed",
    "rejected",
    "refused",
    "expired",
    "cancelled",
]
ClaimStatus = Literal["approved", "held", "rejected", "captured", "in_payout", "paid"]
Milestone = Literal["start", "completion", "cancellation"]
Canceller = Literal["learner", "provider"]

AWAITING_LEARNER = ("awaiting_learner_confirmation", "awaiting_co_payment")
# statuses that occupy a seat in the session
HOLDS_SEAT = (
    "awaiting_learner_confirmation",
    "held",
    "awaiting_co_payment",
    "reserving",
    "confirmed",
    "completed",
)
ELIGIBLE_PROVIDER = ("accredited",)


class PaymentsError(DomainError):
    """A rule refused the request. ``kind`` says how the API answers."""

    kind: Literal["conflict", "unprocessable", "forbidden", "not_found"] = "conflict"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail, code=code)


class NotAllowed(PaymentsError):
    kind = "forbidden"


class Unknown(PaymentsError):
    kind = "not_found"


class Invalid(PaymentsError):
    kind = "unprocessable"


@dataclass(frozen=True)
class AccountView:
    account_id: uuid.UUID
    status: str
    employment_status: str
    need_flags: tuple[str, ...]


@dataclass(frozen=True)
class CourseView:
    course_id: uuid.UUID
    provider_id: str
    version: int
    status: str
    price: int
    isced_field: str | None
    eqf_level: int | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class SessionView:
    session_id: uuid.UUID
    course_id: uuid.UUID
    starts_on: date
    ends_on: date
    seats: int
    withdrawn: bool
    # the moment the session ends (unknown for sessions projected before it was kept)
    ends_at: datetime | None = None


@dataclass(frozen=True)
class LotView:
    kind: str
    amount: int
    earmark: dict[str, Any] | None
    expires_at: datetime | None
    revoked: bool


def provider_standing(status: str, qa_valid_until: date | None, today: date) -> str:
    """An accredited provider whose quality assurance lapsed is no longer eligible."""
    if status == "accredited" and qa_valid_until is not None and qa_valid_until < today:
        return "qa_expired"
    return status


def check_proposal(
    *,
    provider_id: str,
    provider_status: str | None,
    account: AccountView | None,
    course: CourseView | None,
    session: SessionView | None,
    seats_taken: int,
    today: date,
) -> None:
    """Refuse an enrolment the read models show cannot go ahead."""
    if provider_status is None:
        raise NotAllowed("provider_unknown", f"provider {provider_id} is not registered")
    if provider_status not in ELIGIBLE_PROVIDER:
        raise NotAllowed(
            "provider_not_eligible", f"provider {provider_id} is {provider_status}: no enrolments"
        )
    if course is None:
        raise Unknown("course_not_found", "no such course")
    if course.provider_id != provider_id:
        raise NotAllowed("course_of_another_provider", "the course belongs to another provider")
    if course.status != "approved":
        raise Invalid("course_not_approved", f"the course is {course.status}, not approved")
    if session is None or session.course_id != course.course_id or session.withdrawn:
        raise Invalid("session_not_found", "no such session of this course")
    if session.ends_on < today:
        raise Invalid("session_ended", f"the session ended on {session.ends_on}")
    if seats_taken >= session.seats:
        raise PaymentsError("session_full", f"all {session.seats} seats of the session are taken")
    if account is None:
        raise Unknown("account_not_found", "no such account")
    if account.status != "active":
        raise Invalid("account_not_active", f"the account is {account.status}")


def velocity_exceeded(config: PaymentsConfig, enrolments_last_hour: int) -> bool:
    """Whether one more enrolment goes beyond the provider's hourly allowance."""
    return enrolments_last_hour + 1 > config.velocity_per_hour


def earmark_matches(earmark: dict[str, Any], course: CourseView) -> bool:
    """The ledger's earmark rule: every non-empty criterion must hold."""
    fields = earmark.get("isced_fields") or ()
    levels = earmark.get("eqf_levels") or ()
    ids = earmark.get("course_ids") or ()
    tags = earmark.get("tags") or ()
    if fields and not (
        course.isced_field and any(course.isced_field.startswith(f) for f in fields)
    ):
        return False
    if levels and course.eqf_level not in levels:
        return False
    if ids and str(course.course_id) not in {str(i) for i in ids}:
        return False
    return not (tags and not set(tags) & set(course.tags))


def participation_fee(
    config: PaymentsConfig,
    account: AccountView,
    course: CourseView,
    lots: Iterable[LotView],
    now: datetime,
) -> tuple[int, str | None]:
    """The fee the learner pays themselves, and why it is waived when it is."""
    if config.participation_fee == 0:
        return 0, None
    if account.employment_status in config.fee_exempt_statuses:
        return 0, f"employment_status:{account.employment_status}"
    flags = set(account.need_flags) & set(config.fee_exempt_flags)
    if flags:
        return 0, f"need_flag:{sorted(flags)[0]}"
    if config.fee_waived_by_earmarked_top_up:
        for lot in lots:
            live = not lot.revoked and (lot.expires_at is None or lot.expires_at > now)
            if (
                live
                and lot.kind == "top_up"
                and lot.earmark
                and lot.amount >= config.participation_fee
                and earmark_matches(lot.earmark, course)
            ):
                return 0, "earmarked_top_up"
    return min(config.participation_fee, course.price), None


def credit_request(price: int, fee: int) -> int:
    """What the account is asked to cover: the price less the learner's own fee."""
    amount = price - fee
    if amount <= 0:
        raise Invalid(
            "price_within_participation_fee",
            f"the price {price} does not exceed the participation fee {fee}: "
            "nothing to pay from the account",
        )
    return amount


def band_amount(config: PaymentsConfig, price: int, completion_rate: int) -> int:
    """What a completion at ``completion_rate`` percent earns, before the reservation cap."""
    if not 0 <= completion_rate <= 100:
        raise ValueError("completion_rate is a percentage")
    if completion_rate >= config.band_full_rate:
        return price
    if completion_rate < config.band_floor_rate:
        return price * config.band_floor_share // 100
    return price * completion_rate // 100


@dataclass(frozen=True)
class ClaimSubject:
    """What a claim decision needs to know about the enrolment it names."""

    provider_id: str
    status: str
    price: int
    covered: int
    captured: int
    starts_on: date
    ends_on: date
    reservation_status: str | None  # of the reservation a capture would take from
    reserved_now: int


@dataclass(frozen=True)
class ClaimDecision:
    status: ClaimStatus
    reason: str | None = None
    amount: int = 0


def decide_claim(
    config: PaymentsConfig,
    *,
    claimant: str,
    subject: ClaimSubject | None,
    milestone: Milestone,
    completion_rate: int | None,
    earlier_claims: Iterable[tuple[str, str]],
    provider_status: str | None,
    today: date,
) -> ClaimDecision:
    """Approve, hold or reject a provider's claim. ``earlier_claims``: (milestone, status)."""

    def rejected(reason: str) -> ClaimDecision:
        return ClaimDecision("rejected", reason)

    if subject is None:
        return rejected("enrolment_not_found")
    if subject.provider_id != claimant:
        return rejected("enrolment_of_another_provider")
    if subject.status == "cancelled":
        return rejected("enrolment_cancelled")
    live = [(m, s) for m, s in earlier_claims if s != "rejected"]
    if any(m == milestone for m, _ in live):
        return rejected("duplicate_claim")
    if subject.status == "completed":
        return rejected("completion_already_claimed")
    if subject.status != "confirmed":
        return rejected("enrolment_not_confirmed")
    if today < subject.starts_on:
        return rejected("outside_claim_window")
    if today > subject.ends_on + timedelta(days=config.claim_window_days):
        return rejected("outside_claim_window")
    if subject.reservation_status == "requested":
        raise PaymentsError(
            "reservation_in_progress", "the ledger is still reserving credit; claim again shortly"
        )
    if subject.reservation_status != "active":
        return rejected("nothing_reserved")
    if milestone == "start":
        if any(m == "completion" for m, _ in live):
            return rejected("completion_already_claimed")
        if (subject.ends_on - subject.starts_on).days < config.start_milestone_min_days:
            return rejected("no_start_milestone")
        amount = min(subject.price * config.start_advance_percent // 100, subject.covered)
    else:
        if completion_rate is None:
            return rejected("completion_rate_missing")
        amount = min(band_amount(config, subject.price, completion_rate), subject.covered)
        amount -= subject.captured
    amount = min(amount, subject.reserved_now)
    if amount <= 0:
        return rejected("nothing_payable")
    if provider_status not in ELIGIBLE_PROVIDER:
        return ClaimDecision("held", "provider_suspended", amount)
    return ClaimDecision("approved", None, amount)


def _invalid(code: str, detail: str, field: str) -> Invalid:
    error = Invalid(code, detail)
    error.field = field
    return error


def check_claim_evidence(
    *,
    milestone: Milestone,
    started_on: date,
    completed_on: date | None,
    attendance_hours: float | None,
    starts_on: date,
    ends_on: date,
    ends_at: datetime | None,
    now: datetime,
) -> None:
    """Paid for training given: the evidence's dates lie within the session and never in
    the future, and a completion is claimed only once the session is over (at its end, or
    from the day after its last day when only the day is known). The start milestone (the
    advance of a long session) is the one claim made earlier."""
    today = now.date()
    dates = {"evidence.started_on": started_on, "evidence.completed_on": completed_on}
    for name, value in dates.items():
        if value is not None and value > today:
            raise _invalid("date_in_future", f"{name} {value} is in the future", name)
    for name, value in dates.items():
        if value is not None and not starts_on <= value <= ends_on:
            raise _invalid(
                "date_outside_session",
                f"{name} {value} is outside the session ({starts_on} to {ends_on})",
                name,
            )
    days = (ends_on - starts_on).days + 1
    if attendance_hours is not None and attendance_hours > days * 24:
        raise _invalid(
            "attendance_exceeds_session",
            f"evidence.attendance_hours {attendance_hours} exceed the session's {days} days",
            "evidence.attendance_hours",
        )
    over = now >= ends_at if ends_at is not None else today > ends_on
    if milestone == "completion" and not over:
        raise _invalid(
            "session_not_over",
            f"a completion is claimed after the session's end ({ends_at or ends_on}); "
            "before it only the start milestone of a long session may be claimed",
            "milestone",
        )


Attestation = Literal["pending", "attested", "contested", "lapsed", "resolved", "not_required"]
ContestReason = Literal[
    "not_enrolled", "did_not_attend", "did_not_complete", "wrong_dates", "not_as_described"
]
# a captured claim is payable only once the learner's word allows it
PAYABLE_ATTESTATIONS: tuple[Attestation, ...] = ("attested", "lapsed", "resolved", "not_required")


def check_attestation_open(
    *, status: str, attestation: str, attest_until: datetime | None, now: datetime
) -> None:
    """The learner may attest or contest a claim that waits for their word, in the window."""
    if attestation != "pending" or status not in ("approved", "held", "captured"):
        raise PaymentsError(
            "not_awaiting_attestation",
            f"the claim is {status} and its attestation {attestation}: nothing to attest",
        )
    if attest_until is None or now >= attest_until:
        raise PaymentsError(
            "attestation_window_closed", f"the attestation window closed at {attest_until}"
        )


@dataclass(frozen=True)
class Cancellation:
    kind: Literal["before_confirmation", "withdrawal", "late", "provider"]
    provider_share: int  # captured for the provider; the rest of the reservation is released


def decide_cancellation(
    config: PaymentsConfig,
    *,
    by: Canceller,
    status: str,
    confirmed_at: datetime | None,
    starts_on: date,
    price: int,
    covered: int,
    claim_in_flight: bool,
    now: datetime,
) -> Cancellation:
    """What a cancellation by the learner or the provider does, under the configured rules."""
    if status in ("awaiting_learner_confirmation", "held", "awaiting_co_payment"):
        return Cancellation("before_confirmation", 0)
    if status == "reserving":
        raise PaymentsError(
            "reservation_in_progress", "credit is being reserved; cancel again in a moment"
        )
    if status != "confirmed":
        raise PaymentsError("not_cancellable", f"an enrolment that is {status} cannot be cancelled")
    if claim_in_flight:
        raise PaymentsError("claim_in_progress", "a claim on this enrolment is being paid")
    if by == "provider":
        return Cancellation("provider", 0)
    assert confirmed_at is not None
    in_withdrawal = now < confirmed_at + timedelta(days=config.withdrawal_days)
    if in_withdrawal and now.date() < starts_on:
        return Cancellation("withdrawal", 0)
    share = min(price * config.late_cancellation_percent // 100, covered)
    return Cancellation("late", share)


def reservation_expiry(config: PaymentsConfig, ends_on: date, now: datetime) -> datetime:
    """Credit stays held until the claim window is over, plus a margin."""
    days = config.claim_window_days + config.reservation_margin_days + 1
    end = datetime.combine(ends_on, datetime.min.time(), tzinfo=now.tzinfo) + timedelta(days=days)
    return max(end, now + timedelta(days=1))
