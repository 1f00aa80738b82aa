"""A provider's claim for a milestone: the evidence checked (paid for training given), the
rules' decision (approve, hold or reject, and how much), and the claim as recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.payments.config import PaymentsConfig
from services.payments.domain.claims import Claim, ClaimStatus, Decided, Milestone, ref
from services.payments.domain.errors import Invalid, PaymentsError
from services.payments.domain.fees import band_amount
from services.payments.domain.views import eligible
from shared.events.payments import ClaimHeld, ClaimRejected


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
    if not eligible(provider_status):
        return ClaimDecision("held", "provider_suspended", amount)
    return ClaimDecision("approved", None, amount)


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
            raise Invalid("date_in_future", f"{name} {value} is in the future", field=name)
    for name, value in dates.items():
        if value is not None and not starts_on <= value <= ends_on:
            raise Invalid(
                "date_outside_session",
                f"{name} {value} is outside the session ({starts_on} to {ends_on})",
                field=name,
            )
    days = (ends_on - starts_on).days + 1
    if attendance_hours is not None and attendance_hours > days * 24:
        raise Invalid(
            "attendance_exceeds_session",
            f"evidence.attendance_hours {attendance_hours} exceed the session's {days} days",
            field="evidence.attendance_hours",
        )
    over = now >= ends_at if ends_at is not None else today > ends_on
    if milestone == "completion" and not over:
        raise Invalid(
            "session_not_over",
            f"a completion is claimed after the session's end ({ends_at or ends_on}); "
            "before it only the start milestone of a long session may be claimed",
            field="milestone",
        )


def recorded(
    config: PaymentsConfig,
    decision: ClaimDecision,
    *,
    claim_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    provider_id: str,
    account_id: uuid.UUID | None,
    reservation_id: uuid.UUID | None,
    milestone: Milestone,
    completion_rate: int | None,
    evidence: dict[str, Any],
    actor: str,
    now: datetime,
) -> Decided:
    """The claim as the rules decided it. A rejected or held claim is told at once; an
    approved one by :func:`capture_requested`. The learner attests or contests within the
    window; a rejected claim asks nothing."""
    claim = Claim(
        claim_id=claim_id,
        enrolment_id=enrolment_id,
        provider_id=provider_id,
        account_id=account_id,
        milestone=milestone,
        completion_rate=completion_rate,
        evidence=evidence,
        status=decision.status,
        reason=decision.reason if decision.status == "rejected" else None,
        hold_reason=decision.reason if decision.status == "held" else None,
        held_from="approved" if decision.status == "held" else None,
        amount=decision.amount,
        reservation_id=reservation_id,
        claimed_by=actor,
        claimed_at=now,
        decided_at=now,
        updated_at=now,
        attestation="not_required" if decision.status == "rejected" else "pending",
        attest_until=None if decision.status == "rejected" else now + config.attestation_window,
    )
    if decision.status == "rejected":
        return claim, [ClaimRejected(**ref(claim), reason=decision.reason or "")]
    if decision.status == "held":
        return claim, [ClaimHeld(**ref(claim), reason=decision.reason or "")]
    return claim, []
