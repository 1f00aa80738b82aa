"""Cancelling an enrolment, by the learner or the provider: before consent nothing was
reserved; within the withdrawal period (and before the session starts), or by the provider,
all the credit comes back; a late cancellation by the learner leaves the provider a share,
captured through a claim of its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from services.payments.config import PaymentsConfig
from services.payments.domain.claims import IN_FLIGHT, Claim, cancellation_share
from services.payments.domain.enrolments import (
    BEFORE_CONSENT,
    Canceller,
    Enrolment,
    moved,
    ref,
)
from services.payments.domain.errors import PaymentsError
from services.payments.domain.reservations import Reservation
from shared.events.base import Event
from shared.events.payments import (
    CancellationReason,
    CaptureRequested,
    EnrolmentCancelled,
    ReleaseRequested,
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
    if status in BEFORE_CONSENT:
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


@dataclass(frozen=True)
class Cancelled:
    enrolment: Enrolment
    share_claim: Claim | None  # the provider's share, to record
    events: list[Event]


def cancel(
    config: PaymentsConfig,
    e: Enrolment,
    *,
    by: Canceller,
    reason: CancellationReason,
    claims: Sequence[Claim],
    reservation: Reservation | None,
    share_claim_id: uuid.UUID,
    now: datetime,
) -> Cancelled:
    """Apply the cancellation rules; the ledger releases the reservation (capturing the
    provider's share first, when there is one). Cancelling twice changes nothing."""
    if e.status == "cancelled":
        return Cancelled(e, None, [])
    in_flight = any(c.status in IN_FLIGHT and c.captured == 0 for c in claims)
    decision = decide_cancellation(
        config,
        by=by,
        status=e.status,
        confirmed_at=e.confirmed_at,
        starts_on=e.starts_on,
        price=e.price,
        covered=e.covered - e.captured,
        claim_in_flight=in_flight,
        now=now,
    )
    events: list[Event] = []
    active = reservation is not None and reservation.status == "active"
    share = decision.provider_share if active else 0
    share_claim = None
    if reservation is not None and active and share > 0:
        share_claim = cancellation_share(
            claim_id=share_claim_id,
            enrolment_id=e.enrolment_id,
            provider_id=e.provider_id,
            account_id=e.account_id,
            reservation_id=reservation.reservation_id,
            amount=share,
            evidence={"rule": decision.kind, "reason": reason},
            by=by,
            now=now,
        )
        events.append(
            CaptureRequested(
                enrolment_id=e.enrolment_id,
                account_id=e.account_id,
                reservation_id=reservation.reservation_id,
                claim_id=share_claim_id,
                amount=share,
                provider_id=e.provider_id,
            )
        )
    elif reservation is not None and active:
        events.append(
            ReleaseRequested(
                enrolment_id=e.enrolment_id,
                account_id=e.account_id,
                reservation_id=reservation.reservation_id,
                reason=f"cancelled by {by}: {decision.kind}",
            )
        )
    after = moved(
        e,
        "cancel",
        now,
        reason=reason,
        cancelled_by=by,
        cancellation=decision.kind,
        cancelled_at=now,
    )
    events.append(
        EnrolmentCancelled(
            **ref(after),
            cancelled_by=by,
            rule=decision.kind,
            provider_share=share,
            reason_code=reason,
        )
    )
    return Cancelled(after, share_claim, events)
