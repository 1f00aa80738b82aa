"""The enrolment as a state machine: a provider proposes, the learner consents (or refuses,
or lets the proposal expire), the ledger reserves credit (confirmed), rejects it or offers
what the account has (the learner may pay the rest); a completion claim captured completes
it, a reservation nobody claimed in time lapses it; either side cancels under the rules;
an agency releases or rejects what the velocity rule held.

The legal moves are written once in :data:`TRANSITIONS`; each decision function takes the
enrolment (a frozen :class:`Enrolment`) and what the handler loaded, and returns the new
enrolment with the events to publish. No I/O and no clock: ``now`` is passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from services.payments.config import PaymentsConfig
from services.payments.domain.errors import PaymentsError
from services.payments.domain.fees import credit_request, participation_fee
from services.payments.domain.machine import advance
from services.payments.domain.reservations import course_ref, reservation_expiry
from services.payments.domain.views import (
    AccountView,
    CourseView,
    LotView,
    eligible,
)
from shared.events.base import Event
from shared.events.ledger import CreditsReserved, ReservationRejected
from shared.events.payments import (
    EnrolmentConfirmed,
    EnrolmentProposed,
    EnrolmentRejected,
    EnrolmentRequested,
    ReleaseRequested,
)

EnrolmentStatus = Literal[
    "awaiting_learner_confirmation",
    "held",
    "reserving",
    "reservation_rejected",
    "awaiting_co_payment",
    "confirmed",
    "completed",
    "rejected",
    "refused",
    "expired",
    "cancelled",
]
EnrolmentMove = Literal[
    "release",
    "consent",
    "refuse",
    "expire",
    "reject",
    "confirm",
    "ask_co_payment",
    "complete",
    "lapse",
    "cancel",
    "refuse_reservation",
    "retry_reservation",
    "time_out",
]
Canceller = Literal["learner", "provider"]

# the learner's word is awaited (a proposal, or an offer of what the account has)
AWAITING_LEARNER: tuple[EnrolmentStatus, ...] = (
    "awaiting_learner_confirmation",
    "awaiting_co_payment",
)
# nothing reserved yet: a cancellation gives nothing back
BEFORE_CONSENT: tuple[EnrolmentStatus, ...] = (
    "awaiting_learner_confirmation",
    "held",
    "awaiting_co_payment",
)
# the learner consented: the saga is under way (or waits for an operator) or done
CONSENTED: tuple[EnrolmentStatus, ...] = (
    "reserving",
    "reservation_rejected",
    "confirmed",
    "completed",
)
# statuses that occupy a seat in the session
HOLDS_SEAT: tuple[EnrolmentStatus, ...] = BEFORE_CONSENT + CONSENTED
# ended before any credit was used: credit reserved late goes back
ENDED: tuple[EnrolmentStatus, ...] = ("cancelled", "rejected", "expired")

# the legal moves, written once: a move, the statuses it leaves, the status it reaches
TRANSITIONS: dict[EnrolmentMove, tuple[frozenset[EnrolmentStatus], EnrolmentStatus]] = {
    "release": (frozenset({"held"}), "awaiting_learner_confirmation"),
    "consent": (frozenset(AWAITING_LEARNER), "reserving"),
    "refuse": (frozenset(AWAITING_LEARNER), "refused"),
    "expire": (frozenset(AWAITING_LEARNER), "expired"),
    "reject": (
        frozenset({"held", "reserving", "reservation_rejected", *AWAITING_LEARNER}),
        "rejected",
    ),
    "confirm": (frozenset({"reserving"}), "confirmed"),
    "ask_co_payment": (frozenset({"reserving"}), "awaiting_co_payment"),
    "complete": (frozenset({"confirmed"}), "completed"),
    "lapse": (frozenset({"confirmed"}), "expired"),
    "cancel": (frozenset({*BEFORE_CONSENT, "confirmed"}), "cancelled"),
    # the ledger refused the request as written: an operator retries or abandons it
    "refuse_reservation": (frozenset({"reserving"}), "reservation_rejected"),
    "retry_reservation": (frozenset({"reservation_rejected"}), "reserving"),
    # no answer from the ledger in time: the seat is freed
    "time_out": (frozenset({"reserving"}), "expired"),
}
# the ledger's refusals that are no answer about the learner's credit but about the request
OPERATOR_REASONS = frozenset({"expiry_in_past", "id_conflict"})


@dataclass(frozen=True)
class Enrolment:
    """An enrolment as stored (one row of ``payments.enrolments``)."""

    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    course_id: uuid.UUID
    course_version: int
    session_id: uuid.UUID
    starts_on: date
    ends_on: date
    price: int
    status: EnrolmentStatus
    proposed_by: str
    proposed_at: datetime
    updated_at: datetime
    ends_at: datetime | None = None
    reason: str | None = None
    hold_reason: str | None = None
    participation_fee: int = 0
    fee_exemption: str | None = None
    requested: int = 0
    covered: int = 0
    co_payment: int = 0
    available_at_rejection: int | None = None
    accept_co_payment: bool = False
    reservation_id: uuid.UUID | None = None
    captured: int = 0
    released: int = 0
    cancelled_by: str | None = None
    cancellation: str | None = None
    expires_at: datetime | None = None
    confirmed_at: datetime | None = None
    decided_at: datetime | None = None
    cancelled_at: datetime | None = None
    # the guidance plan that led to this enrolment (the learner's own)
    guidance_plan_id: uuid.UUID | None = None


Decided = tuple[Enrolment, list[Event]]


def moved(e: Enrolment, move: EnrolmentMove, now: datetime, **changes: Any) -> Enrolment:
    """``e`` after ``move`` (checked against :data:`TRANSITIONS`), with ``changes``."""
    return advance(TRANSITIONS, "enrolment", e, move, now, **changes)


def ref(e: Enrolment) -> dict[str, Any]:
    """What every event about the enrolment's outcome names."""
    return {
        "enrolment_id": e.enrolment_id,
        "account_id": e.account_id,
        "provider_id": e.provider_id,
        "course_id": e.course_id,
        "session_id": e.session_id,
    }


# --- the learner's word and the agency's review ----------------------------------------------


def credit_requested(
    config: PaymentsConfig,
    e: Enrolment,
    reference: uuid.UUID,
    course: CourseView,
    reservation_id: uuid.UUID,
    amount: int,
    up_to: bool,
    now: datetime,
) -> EnrolmentRequested:
    """The ledger is asked to reserve ``amount`` (``up_to``: what the account has, up to
    it) under ``reference``, until the claim window is over."""
    return EnrolmentRequested(
        enrolment_id=reference,
        account_id=e.account_id,
        reservation_id=reservation_id,
        provider_id=e.provider_id,
        course=course_ref(course),
        course_version=e.course_version,
        amount=amount,
        up_to=up_to,
        expires_at=reservation_expiry(config, e.ends_on, now),
    )


def rejected(
    e: Enrolment, move: EnrolmentMove, reason: str, now: datetime, **changes: Any
) -> Decided:
    """The enrolment ends without credit used (``reject``, ``refuse`` or ``expire``)."""
    after = moved(e, move, now, reason=reason, decided_at=now, **changes)
    return after, [EnrolmentRejected(**ref(after), status=after.status, reason=reason)]


def expire_if_due(e: Enrolment, now: datetime) -> Decided | None:
    """A proposal past its confirmation deadline expires (``None`` when it is not due)."""
    if e.status in AWAITING_LEARNER and e.expires_at is not None and e.expires_at <= now:
        return rejected(e, "expire", "confirmation_expired", now)
    return None


def _awaiting_learner(e: Enrolment) -> None:
    if e.status not in AWAITING_LEARNER:
        raise PaymentsError("not_awaiting_confirmation", f"the enrolment is {e.status}")


def check_consent(e: Enrolment, accept_co_payment: bool) -> None:
    """The learner may consent to a proposal, or to an offer only by accepting to pay."""
    _awaiting_learner(e)
    if e.status == "awaiting_co_payment" and not accept_co_payment:
        raise PaymentsError(
            "co_payment_required",
            "the account does not cover the price: confirm with accept_co_payment or refuse",
        )


def consent(
    config: PaymentsConfig,
    e: Enrolment,
    *,
    provider_status: str | None,
    account: AccountView | None,
    course: CourseView | None,
    lots: list[LotView],
    accept_co_payment: bool,
    reservation_id: uuid.UUID,
    now: datetime,
) -> Decided:
    """The learner consents (checked by :func:`check_consent`): the read models are checked
    again, the fee follows the learner's situation at consent, and the ledger is asked to
    reserve (``reserving``) under ``reservation_id``; or the enrolment is rejected."""
    if not eligible(provider_status):
        return rejected(e, "reject", "provider_not_eligible", now)
    if course is None or course.status != "approved":
        return rejected(e, "reject", "course_not_approved", now)
    if account is None or account.status != "active":
        return rejected(e, "reject", "account_not_active", now)
    fee, exemption = participation_fee(config, account, course, lots, now)
    try:
        requested = credit_request(e.price, fee)
    except PaymentsError as exc:
        return rejected(e, "reject", str(exc.code), now)
    after = moved(
        e,
        "consent",
        now,
        participation_fee=fee,
        fee_exemption=exemption,
        requested=requested,
        accept_co_payment=accept_co_payment,
        reservation_id=reservation_id,
        confirmed_at=e.confirmed_at or now,
    )
    request = credit_requested(
        config, e, e.enrolment_id, course, reservation_id, requested, accept_co_payment, now
    )
    return after, [request]


def refuse(e: Enrolment, now: datetime) -> Decided:
    """The learner refuses (refusing twice answers the same)."""
    if e.status == "refused":
        return e, []
    _awaiting_learner(e)
    return rejected(e, "refuse", "learner_refused", now)


def review(config: PaymentsConfig, e: Enrolment, approve: bool, now: datetime) -> Decided:
    """An agency decides on an enrolment the velocity rule held."""
    if e.status != "held":
        raise PaymentsError("not_held", f"the enrolment is {e.status}, not held")
    if not approve:
        return rejected(e, "reject", "rejected_on_review", now)
    after = moved(e, "release", now, expires_at=now + config.confirmation_window)
    return after, [proposed(after)]


def proposed(e: Enrolment) -> EnrolmentProposed:
    """What the learner is asked to consent to, and until when."""
    assert e.expires_at is not None
    return EnrolmentProposed(
        enrolment_id=e.enrolment_id,
        account_id=e.account_id,
        provider_id=e.provider_id,
        course_id=e.course_id,
        course_version=e.course_version,
        session_id=e.session_id,
        starts_on=e.starts_on,
        ends_on=e.ends_on,
        price=e.price,
        co_payment=e.co_payment,
        expires_at=e.expires_at,
    )


# --- the ledger's answers ---------------------------------------------------------------------


def on_reserved(e: Enrolment, event: CreditsReserved, now: datetime) -> Decided:
    """The ledger reserved: a consenting enrolment is confirmed; one that ended meanwhile
    gives the credit back."""
    if e.status == "reserving":
        co_payment = e.price - event.amount
        after = moved(e, "confirm", now, covered=event.amount, co_payment=co_payment)
        after = replace(after, reason=None, decided_at=now)
        confirmed = EnrolmentConfirmed(
            **ref(after),
            price=after.price,
            covered=event.amount,
            co_payment=co_payment,
            participation_fee=after.participation_fee,
            isced_field=event.course.isced_field,
        )
        return after, [confirmed]
    if e.status in ENDED:
        release = ReleaseRequested(
            enrolment_id=event.enrolment_id,
            account_id=event.account_id,
            reservation_id=event.reservation_id,
            reason=f"enrolment {e.status}",
        )
        return e, [release]
    return e, []


def on_reservation_rejected(
    config: PaymentsConfig, e: Enrolment, event: ReservationRejected, up_to: bool, now: datetime
) -> Decided:
    """The ledger refused: the learner may still take what the account has and pay the rest
    (unless they already accepted to), else the enrolment is rejected."""
    if e.status != "reserving":
        return e, []
    if event.reason in OPERATOR_REASONS:
        return moved(e, "refuse_reservation", now, reason=event.reason), []
    if event.reason == "insufficient_credit" and event.available > 0 and not up_to:
        offer = moved(
            e,
            "ask_co_payment",
            now,
            reason="insufficient_credit",
            available_at_rejection=event.available,
            co_payment=e.price - event.available,
            expires_at=now + config.confirmation_window,
        )
        return offer, []
    return rejected(e, "reject", event.reason, now, available_at_rejection=event.available)


def on_captured(
    e: Enrolment, amount: int, released: int, completion: bool, now: datetime
) -> Enrolment:
    """The ledger captured for a claim (``completion``: the completion claim)."""
    after = replace(e, captured=e.captured + amount, released=e.released + released, updated_at=now)
    if completion and e.status == "confirmed":
        after = moved(after, "complete", now)
    return after


def on_released(e: Enrolment, amount: int, expired: bool, now: datetime) -> Enrolment:
    """The ledger released the reservation; nobody claimed within the claim window when it
    expired, and a confirmed enrolment then lapses."""
    after = replace(e, released=e.released + amount, updated_at=now)
    if expired and e.status == "confirmed":
        after = moved(after, "lapse", now, reason="reservation_expired", decided_at=now)
    return after
