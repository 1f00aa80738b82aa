"""The claim as a state machine: a provider claims a milestone with evidence; the rules
approve, hold or reject it (:func:`decide_claim`); an approved claim asks the ledger to
capture (``approved`` → ``captured``); a hold (fraud, suspension, the learner's contest) is
lifted under four eyes; a captured claim is bound to a payout (``in_payout``), paid with it
(``paid``) or freed when the payout fails or is cancelled. The learner's word is kept beside
the status (``attestation``): a captured claim is payable once it allows.

The legal moves are written once in :data:`TRANSITIONS`; decisions take the frozen
:class:`Claim` and return the new claim with its events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from typing import Any, Literal

from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import PaymentsError
from services.payments.domain.machine import advance
from services.payments.domain.recoveries import Recovery, owed
from services.payments.domain.reservations import Reservation
from shared.events.base import Event
from shared.events.payments import (
    CaptureRequested,
    ClaimApproved,
    ClaimHeld,
    ClaimRejected,
    ClaimReversed,
    CompletionCertified,
)

ClaimStatus = Literal[
    "approved",
    "held",
    "rejected",
    "captured",
    "in_payout",
    "paid",
    "capture_rejected",
    "reversed",
]
ClaimMove = Literal[
    "reverse",
    "request_capture",
    "refuse_capture",
    "retry_capture",
    "capture",
    "hold",
    "release",
    "release_captured",
    "reject",
    "bind",
    "unbind",
    "unbind_held",
    "pay",
]
# (``leave_compensation``: an employer's wage compensation for training leave, paid from the
# leave fund's budget, see :mod:`services.payments.domain.leave`)
Milestone = Literal["start", "completion", "cancellation", "leave_compensation"]
Attestation = Literal["pending", "attested", "contested", "lapsed", "resolved", "not_required"]
ContestReason = Literal[
    "not_enrolled", "did_not_attend", "did_not_complete", "wrong_dates", "not_as_described"
]

# the legal moves, written once: a move, the statuses it leaves, the status it reaches
TRANSITIONS: dict[ClaimMove, tuple[frozenset[ClaimStatus], ClaimStatus]] = {
    "request_capture": (frozenset({"approved", "held"}), "approved"),
    # (a capture the ledger first refused may land later, when an operator replays it)
    "capture": (frozenset({"approved", "capture_rejected"}), "captured"),
    "hold": (frozenset({"approved", "captured"}), "held"),
    # a hold lifted: the claim goes on where it stopped
    "release": (frozenset({"held"}), "approved"),
    "release_captured": (frozenset({"held"}), "captured"),
    "reject": (frozenset({"held", "capture_rejected"}), "rejected"),
    # the ledger refused the capture: never paid until an operator retries or abandons it
    "refuse_capture": (frozenset({"approved"}), "capture_rejected"),
    "retry_capture": (frozenset({"capture_rejected"}), "approved"),
    # the ledger reversed the capture before the claim was paid: it never will be
    "reverse": (frozenset({"captured", "held"}), "reversed"),
    # bound to a payout, freed again (held when its provider was suspended meanwhile), paid
    "bind": (frozenset({"captured"}), "in_payout"),
    "unbind": (frozenset({"in_payout"}), "captured"),
    "unbind_held": (frozenset({"in_payout"}), "held"),
    "pay": (frozenset({"in_payout"}), "paid"),
}
# a claim asking the ledger for money not yet captured: a cancellation waits for it
IN_FLIGHT: tuple[ClaimStatus, ...] = ("approved", "held")
# unpaid and in no payout's way: a suspension holds them
HOLDABLE: tuple[ClaimStatus, ...] = tuple(sorted(TRANSITIONS["hold"][0]))
# a captured claim is payable only once the learner's word allows it
PAYABLE_ATTESTATIONS: tuple[Attestation, ...] = ("attested", "lapsed", "resolved", "not_required")
# the window of the learner's word: open, and what it becomes when it passes in silence
AWAITING_WORD: Attestation = "pending"
SILENCE: Attestation = "lapsed"


def after(move: ClaimMove) -> ClaimStatus:
    """The status a move reaches (for moves applied to many claims at once)."""
    return TRANSITIONS[move][1]


@dataclass(frozen=True)
class Claim:
    """A claim as stored (one row of ``payments.claims``)."""

    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    provider_id: str
    milestone: Milestone
    evidence: dict[str, Any]
    status: ClaimStatus
    claimed_by: str
    claimed_at: datetime
    updated_at: datetime
    account_id: uuid.UUID | None = None
    completion_rate: int | None = None
    reason: str | None = None
    hold_reason: str | None = None
    held_from: str | None = None
    amount: int = 0
    captured: int = 0
    reservation_id: uuid.UUID | None = None
    capture_requested: bool = False
    payout_id: uuid.UUID | None = None
    decided_at: datetime | None = None
    captured_at: datetime | None = None
    paid_at: datetime | None = None
    attestation: Attestation = "not_required"
    attest_until: datetime | None = None
    attested_at: datetime | None = None
    contested_at: datetime | None = None
    contest_reason: str | None = None


Decided = tuple[Claim, list[Event]]


def moved(claim: Claim, move: ClaimMove, now: datetime, **changes: Any) -> Claim:
    """``claim`` after ``move`` (checked against :data:`TRANSITIONS`), with ``changes``."""
    return advance(TRANSITIONS, "claim", claim, move, now, **changes)


def ref(claim: Claim) -> dict[str, Any]:
    return {
        "claim_id": claim.claim_id,
        "enrolment_id": claim.enrolment_id,
        "provider_id": claim.provider_id,
        "milestone": claim.milestone,
    }


def cancellation_share(
    *,
    claim_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    provider_id: str,
    account_id: uuid.UUID,
    reservation_id: uuid.UUID,
    amount: int,
    evidence: dict[str, Any],
    by: str,
    now: datetime,
) -> Claim:
    """The provider's share of a late cancellation: approved and captured at once, with no
    attestation asked."""
    return Claim(
        claim_id=claim_id,
        enrolment_id=enrolment_id,
        provider_id=provider_id,
        account_id=account_id,
        milestone="cancellation",
        evidence=evidence,
        status="approved",
        amount=amount,
        reservation_id=reservation_id,
        capture_requested=True,
        claimed_by=f"system:cancellation-by-{by}",
        claimed_at=now,
        decided_at=now,
        updated_at=now,
    )


# --- capture and holds -------------------------------------------------------------------------


def capture_requested(claim: Claim, now: datetime) -> Claim:
    """The claim asks the ledger to capture its amount (a hold, if any, is lifted)."""
    return moved(
        claim, "request_capture", now, capture_requested=True, held_from=None, hold_reason=None
    )


def capture_request(claim: Claim, enrolment: Enrolment, reservation_id: uuid.UUID) -> Event:
    """The ledger is asked to capture the claim's amount as one part of the reservation: a
    start advance leaves the rest reserved for the completion, any other claim is the final
    part and releases what is left."""
    return CaptureRequested(
        enrolment_id=enrolment.enrolment_id,
        account_id=enrolment.account_id,
        reservation_id=reservation_id,
        claim_id=claim.claim_id,
        amount=claim.amount,
        final=claim.milestone != "start",
        provider_id=enrolment.provider_id,
    )


def request_capture(
    claim: Claim, enrolment: Enrolment, reservation: Reservation, now: datetime
) -> Decided:
    """Ask the ledger to capture the claim's amount from the enrolment's reservation."""
    after = capture_requested(claim, now)
    approved = ClaimApproved(**ref(after), amount=after.amount)
    return after, [approved, capture_request(after, enrolment, reservation.reservation_id)]


def capture_refused(claim: Claim, reason: str, now: datetime) -> Claim:
    """The ledger refused the capture: an approved claim waits for an operator
    (``capture_rejected``, never paid as it is); a held one stays held and asks again when
    its hold is lifted."""
    if claim.status == "held":
        return replace(claim, capture_requested=False, reason=reason, updated_at=now)
    return moved(claim, "refuse_capture", now, capture_requested=False, reason=reason)


def retry_capture(
    claim: Claim, enrolment: Enrolment, reservation: Reservation, now: datetime
) -> Decided:
    """An operator asks the ledger again (after the cause was removed): from the reservation
    when it still holds the amount, else the claim waits for ``reservation`` (a new one,
    requested with it) and asks for its capture once the ledger reserved it."""
    if claim.status != "capture_rejected":
        raise PaymentsError("not_capture_rejected", f"the claim is {claim.status}")
    if reservation.status == "active" and reservation.held >= claim.amount:
        after = moved(
            claim,
            "retry_capture",
            now,
            capture_requested=True,
            reason=None,
            reservation_id=reservation.reservation_id,
        )
        return after, [capture_request(after, enrolment, reservation.reservation_id)]
    after = moved(
        claim,
        "retry_capture",
        now,
        capture_requested=False,
        reason=None,
        reservation_id=reservation.reservation_id,
    )
    return after, []


def abandon(claim: Claim, now: datetime) -> Decided:
    """An operator gives up on a claim whose capture the ledger refused."""
    if claim.status != "capture_rejected":
        raise PaymentsError("not_capture_rejected", f"the claim is {claim.status}")
    after = moved(claim, "reject", now, reason="abandoned_by_operator")
    return after, [ClaimRejected(**ref(after), reason="abandoned_by_operator")]


def on_captured(claim: Claim, amount: int, now: datetime) -> Claim:
    """The ledger captured the claim's amount; a claim held meanwhile stays held."""
    if claim.status == "held":
        return replace(claim, captured=amount, captured_at=now, updated_at=now)
    return moved(claim, "capture", now, captured=amount, captured_at=now)


def certified(enrolment: Enrolment, claim: Claim) -> list[Event]:
    """A captured completion the provider certified is told to the learner's records."""
    evidence = claim.evidence
    if claim.milestone != "completion" or not evidence.get("certified"):
        return []
    completed_on = datetime.fromisoformat(evidence["completed_on"]).date()
    return [
        CompletionCertified(
            enrolment_id=enrolment.enrolment_id,
            account_id=enrolment.account_id,
            course_id=enrolment.course_id,
            course_version=enrolment.course_version,
            provider_id=enrolment.provider_id,
            completed_at=datetime.combine(completed_on, time(), tzinfo=UTC),
            completion_rate=claim.completion_rate or 0,
            grade=evidence.get("grade"),
        )
    ]


def held(claim: Claim, reason: str, now: datetime) -> Claim:
    """Held until an agency's release is approved; it resumes where it stopped."""
    return moved(claim, "hold", now, held_from=claim.status, hold_reason=reason)


def hold(claim: Claim, reason: str, now: datetime) -> Decided:
    after = held(claim, reason, now)
    return after, [ClaimHeld(**ref(after), reason=reason)]


def lift_hold(claim: Claim, now: datetime) -> Claim:
    """A hold is lifted (approved under four eyes). A claim the learner contested counts as
    resolved. A claim that had asked for its capture goes on (``captured`` once the ledger
    captured, else ``approved``); one that had not stays held until it asks
    (:func:`capture_requested`) or is rejected (:func:`nothing_reserved`)."""
    if claim.status != "held":
        raise PaymentsError("not_held", f"the claim is {claim.status}, not held")
    if claim.attestation == "contested":
        claim = replace(claim, attestation="resolved", updated_at=now)
    if claim.capture_requested:
        move: ClaimMove = "release_captured" if claim.captured > 0 else "release"
        return moved(claim, move, now, held_from=None, hold_reason=None)
    return claim


def nothing_reserved(claim: Claim, now: datetime) -> Decided:
    """A hold lifted when the credit is gone: the claim is rejected."""
    after = moved(claim, "reject", now, reason="nothing_reserved")
    return after, [ClaimRejected(**ref(after), reason="nothing_reserved")]


def capture_reversed(claim: Claim, now: datetime) -> tuple[Claim, Recovery | None, list[Event]]:
    """The ledger reversed the capture the claim was paid from: an unpaid claim is stopped
    (``reversed``); a claim paid, or bound to a payout, stays as it is and the provider owes
    its amount back (a :class:`Recovery`, netted from its next payouts)."""
    if claim.captured == 0 or claim.status in ("reversed", "rejected"):
        return claim, None, []
    if claim.status in ("in_payout", "paid"):
        recovery = owed(claim.provider_id, claim.claim_id, claim.captured, now)
        reversed_ = ClaimReversed(
            **ref(claim), amount=claim.captured, recovery=True, recovery_id=recovery.recovery_id
        )
        return claim, recovery, [reversed_]
    after = moved(claim, "reverse", now, reason="capture_reversed")
    return after, None, [ClaimReversed(**ref(after), amount=claim.captured, recovery=False)]
