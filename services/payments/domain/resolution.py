"""What an operator (admin or finance) does with an enrolment the saga could not finish: the
ledger refused its request as written (``reservation_rejected``: retry under a new
reservation id, or abandon), or never answered (``reserving`` past the timeout: it expires
and frees its seat)."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.payments.config import PaymentsConfig
from services.payments.domain.enrolments import (
    Decided,
    Enrolment,
    credit_requested,
    moved,
    rejected,
)
from services.payments.domain.errors import PaymentsError
from services.payments.domain.reservations import Reservation
from services.payments.domain.reservations import request as request_reservation
from services.payments.domain.views import CourseView
from shared.events.payments import EnrolmentRequested


def retry_reservation(
    config: PaymentsConfig,
    e: Enrolment,
    course: CourseView,
    reservation_id: uuid.UUID,
    now: datetime,
) -> tuple[Enrolment, Reservation, EnrolmentRequested]:
    """An operator asks the ledger again, under a new reservation id, for an enrolment whose
    request it refused as written."""
    if e.status != "reservation_rejected":
        raise PaymentsError("not_reservation_rejected", f"the enrolment is {e.status}")
    after = moved(e, "retry_reservation", now, reservation_id=reservation_id, reason=None)
    reservation = request_reservation(
        reservation_id=reservation_id,
        enrolment_id=e.enrolment_id,
        account_id=e.account_id,
        amount=e.requested,
        up_to=e.accept_co_payment,
        now=now,
    )
    request = credit_requested(
        config, e, e.enrolment_id, course, reservation_id, e.requested, e.accept_co_payment, now
    )
    return after, reservation, request


def abandon(e: Enrolment, now: datetime) -> Decided:
    """An operator gives up on an enrolment the ledger refused: it ends, its seat is free."""
    if e.status != "reservation_rejected":
        raise PaymentsError("not_reservation_rejected", f"the enrolment is {e.status}")
    return rejected(e, "reject", "abandoned_by_operator", now)


def time_out(e: Enrolment, now: datetime) -> Decided:
    """The ledger did not answer in time: the enrolment expires and frees its seat (credit
    reserved late is given back: :func:`on_reserved`)."""
    return rejected(e, "time_out", "reservation_timeout", now)
