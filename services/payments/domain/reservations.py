"""The credit the ledger holds for an enrolment: payments asks (``requested``), the ledger
answers (``active`` with the amount it reserved, or ``rejected``), then captures it for the
claims, in parts (a start advance leaves it ``active`` with the rest held; the final part,
``captured``, releases what is left) or releases it (``released``, or ``expired`` when
nobody claimed in time). Each answer applies once: a reservation that is not in the status
the answer expects ignores it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from services.payments.config import PaymentsConfig
from services.payments.domain.machine import advance
from services.payments.domain.views import CourseView
from shared.events.ledger import CourseRef

ReservationStatus = Literal["requested", "active", "rejected", "captured", "released", "expired"]
ReservationMove = Literal["reserve", "refuse", "capture", "capture_part", "release", "expire"]

TRANSITIONS: dict[ReservationMove, tuple[frozenset[ReservationStatus], ReservationStatus]] = {
    "reserve": (frozenset({"requested"}), "active"),
    "refuse": (frozenset({"requested"}), "rejected"),
    "capture": (frozenset({"active"}), "captured"),
    "capture_part": (frozenset({"active"}), "active"),
    "release": (frozenset({"active"}), "released"),
    "expire": (frozenset({"active"}), "expired"),
}


@dataclass(frozen=True)
class Reservation:
    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    requested: int
    up_to: bool
    status: ReservationStatus
    requested_at: datetime
    updated_at: datetime
    amount: int = 0
    captured: int = 0
    released: int = 0
    reason: str | None = None

    @property
    def held(self) -> int:
        """What the ledger still holds for it (a claim is paid from this)."""
        return self.amount - self.captured - self.released if self.status == "active" else 0


def request(
    *,
    reservation_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    account_id: uuid.UUID,
    amount: int,
    up_to: bool,
    now: datetime,
) -> Reservation:
    """A new request to the ledger (``up_to``: reserve what the account has, up to it)."""
    return Reservation(
        reservation_id=reservation_id,
        enrolment_id=enrolment_id,
        account_id=account_id,
        requested=amount,
        up_to=up_to,
        status="requested",
        requested_at=now,
        updated_at=now,
    )


def applies(reservation: Reservation | None, move: ReservationMove) -> bool:
    """Whether the ledger's answer ``move`` is news for ``reservation`` (an answer delivered
    twice, or about a reservation that is not ours, finds it in another status)."""
    return reservation is not None and reservation.status in TRANSITIONS[move][0]


def _moved(reservation: Reservation, move: ReservationMove, now: datetime) -> Reservation:
    return advance(TRANSITIONS, "reservation", reservation, move, now)


def reserved(reservation: Reservation, amount: int, now: datetime) -> Reservation:
    return replace(_moved(reservation, "reserve", now), amount=amount)


def refused(reservation: Reservation, reason: str, now: datetime) -> Reservation:
    return replace(_moved(reservation, "refuse", now), reason=reason)


def captured(
    reservation: Reservation, amount: int, released: int, final: bool, now: datetime
) -> Reservation:
    """A part captured (``final``: the last one, the rest ``released``)."""
    moved = _moved(reservation, "capture" if final else "capture_part", now)
    return replace(moved, captured=reservation.captured + amount, released=released)


def released(reservation: Reservation, amount: int, expired: bool, now: datetime) -> Reservation:
    """Given back by the ledger: on request (``released``) or at its expiry (``expired``)."""
    moved = _moved(reservation, "expire" if expired else "release", now)
    return replace(moved, released=amount)


def course_ref(course: CourseView) -> CourseRef:
    return CourseRef(
        course_id=course.course_id,
        isced_field=course.isced_field,
        eqf_level=course.eqf_level,
        tags=course.tags,
        region=course.region,
    )


def reservation_expiry(config: PaymentsConfig, ends_on: date, now: datetime) -> datetime:
    """Credit stays held until the claim window is over, plus a margin."""
    days = config.claim_window_days + config.reservation_margin_days + 1
    end = datetime.combine(ends_on, datetime.min.time(), tzinfo=now.tzinfo) + timedelta(days=days)
    return max(end, now + timedelta(days=1))
