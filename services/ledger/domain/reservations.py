"""Reservations and what ends them: a reservation holds credit on the lots the selection
order gives (or is rejected as an event), a capture spends it, a release or a timeout gives
it back (and expires what comes back to a lot already past its date)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.ledger.commands import (
    CaptureReservation,
    ExpireReservations,
    ReleaseReservation,
    ReserveCredits,
)
from shared.events.ledger import (
    CaptureRefusal,
    CaptureRejected,
    CreditsReserved,
    LedgerEvent,
    LotAmount,
    RejectionReason,
    ReleaseReason,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)

from .decision import Decision
from .errors import (
    CaptureExceedsReservation,
    ExpiryInPast,
    IdConflict,
    LedgerError,
    ReservationNotActive,
    ReservationNotFound,
)
from .selection import usable_lots
from .state import Reservation, WalletState

DEFAULT_RESERVATION_LIFETIME = timedelta(days=180)
"""How long a reservation holds credit when the caller gives no ``expires_at``: long enough
for a course to run and be claimed; the payments service normally sets its own."""


def reserve(state: WalletState, cmd: ReserveCredits, now: datetime) -> list[LedgerEvent]:
    known = state.reservations.get(cmd.reservation_id)
    if known is not None:
        if (known.enrolment_id, known.requested, known.course, known.up_to) != (
            cmd.enrolment_id,
            cmd.amount,
            cmd.course,
            cmd.up_to,
        ):
            raise IdConflict(f"reservation {cmd.reservation_id} was made for another request")
        return []
    if cmd.reservation_id in state.rejected:
        return []
    if state.live_reservation(cmd.enrolment_id) is not None:
        return []
    expires_at = cmd.expires_at or now + DEFAULT_RESERVATION_LIFETIME
    if expires_at <= now:
        raise ExpiryInPast(f"reservation {cmd.reservation_id} would expire before {now}")

    lots = usable_lots(state, cmd.course, now)
    usable = sum(lot.free for lot in lots)
    reason: RejectionReason | None = None
    if state.status == "absent":
        reason, usable = "no_wallet", 0
    elif state.status == "closed":
        reason = "account_closed"
    elif state.status == "suspended":
        reason = "account_suspended"
    elif usable == 0 or (usable < cmd.amount and not cmd.up_to):
        reason = "insufficient_credit"
    if reason is not None:
        return [_rejected(cmd, reason, usable, now)]

    amount = min(cmd.amount, usable)
    allocations: list[LotAmount] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.free, left)
        allocations.append(LotAmount(lot_id=lot.lot_id, amount=take))
        left -= take
    return [
        CreditsReserved(
            account_id=cmd.account_id,
            occurred_at=now,
            reservation_id=cmd.reservation_id,
            enrolment_id=cmd.enrolment_id,
            course=cmd.course,
            requested=cmd.amount,
            amount=amount,
            up_to=cmd.up_to,
            allocations=tuple(allocations),
            expires_at=expires_at,
        )
    ]


def existing_reservation(state: WalletState, reservation_id: uuid.UUID) -> Reservation:
    r = state.reservations.get(reservation_id)
    if r is None:
        raise ReservationNotFound(f"no reservation {reservation_id}")
    return r


def capture(state: WalletState, cmd: CaptureReservation, now: datetime) -> list[LedgerEvent]:
    """Capture one part of a reservation: at most what it still holds. A ``final`` part (or
    one that takes all that is held) releases the rest; a part already captured (same
    ``capture_id``, same amount) is not captured twice."""
    r = existing_reservation(state, cmd.reservation_id)
    if cmd.capture_id is not None and cmd.capture_id in r.captures:
        return []  # this part was captured: a redelivered request
    if r.status == "captured" and cmd.capture_id is None:
        if r.captured != cmd.amount:
            raise IdConflict(f"reservation {r.reservation_id} was captured for {r.captured}")
        return []
    if r.status != "active":
        raise ReservationNotActive(f"reservation {r.reservation_id} is {r.status}")
    if cmd.amount > r.held:
        raise CaptureExceedsReservation(
            f"capture of {cmd.amount} exceeds what reservation {r.reservation_id} holds ({r.held})"
        )
    final = cmd.final or cmd.amount == r.held
    # A capture takes from the lots in the order the reservation drew on them (earmarked and
    # soonest-expiring first), so a partial capture gives back the longest-lived credit.
    taken: list[LotAmount] = []
    given_back: list[LotAmount] = []
    left = cmd.amount
    for a in r.allocations:
        take = min(a.amount, left)
        left -= take
        if take:
            taken.append(LotAmount(lot_id=a.lot_id, amount=take))
        if final and a.amount - take:
            given_back.append(LotAmount(lot_id=a.lot_id, amount=a.amount - take))
    decision = Decision(state, cmd.account_id)
    decision.emit(
        ReservationCaptured(
            account_id=cmd.account_id,
            occurred_at=now,
            reservation_id=r.reservation_id,
            enrolment_id=r.enrolment_id,
            amount=cmd.amount,
            released=r.held - cmd.amount if final else 0,
            allocations=tuple(taken),
            released_allocations=tuple(given_back),
            capture_id=cmd.capture_id,
            final=final,
            provider_id=cmd.provider_id,
        )
    )
    decision.expire_returned((a.lot_id for a in given_back), now)
    return decision.events


CAPTURE_REFUSALS: dict[str, CaptureRefusal] = {
    ReservationNotFound.code: "reservation_not_found",
    CaptureExceedsReservation.code: "exceeds_reservation",
    IdConflict.code: "id_conflict",
}
NOT_ACTIVE: dict[str, CaptureRefusal] = {
    "expired": "reservation_expired",
    "released": "reservation_released",
    "captured": "reservation_captured",
}
RESERVE_REFUSALS: dict[str, RejectionReason] = {
    ExpiryInPast.code: "expiry_in_past",
    IdConflict.code: "id_conflict",
}


def capture_refused(
    state: WalletState, cmd: CaptureReservation, error: LedgerError, now: datetime
) -> CaptureRejected:
    """The answer to a capture :func:`capture` refused with ``error``: the one who asked
    waits for it."""
    r = state.reservations.get(cmd.reservation_id)
    reason = CAPTURE_REFUSALS.get(error.code)
    if reason is None:
        if r is None or error.code != ReservationNotActive.code:
            raise error
        reason = NOT_ACTIVE[r.status]
    return CaptureRejected(
        account_id=cmd.account_id,
        occurred_at=now,
        reservation_id=cmd.reservation_id,
        enrolment_id=r.enrolment_id if r else None,
        capture_id=cmd.capture_id,
        amount=cmd.amount,
        reason=reason,
    )


def reservation_refused(
    state: WalletState, cmd: ReserveCredits, error: LedgerError, now: datetime
) -> ReservationRejected:
    """The answer to a reservation :func:`reserve` refused with ``error`` (its request could
    not be honoured as written)."""
    reason = RESERVE_REFUSALS.get(error.code)
    if reason is None:
        raise error
    return _rejected(cmd, reason, 0, now)


def _rejected(
    cmd: ReserveCredits, reason: RejectionReason, available: int, now: datetime
) -> ReservationRejected:
    return ReservationRejected(
        account_id=cmd.account_id,
        occurred_at=now,
        reservation_id=cmd.reservation_id,
        enrolment_id=cmd.enrolment_id,
        reason=reason,
        requested=cmd.amount,
        available=available,
    )


def released(
    account_id: uuid.UUID, r: Reservation, reason: ReleaseReason, now: datetime
) -> ReservationReleased:
    return ReservationReleased(
        account_id=account_id,
        occurred_at=now,
        reservation_id=r.reservation_id,
        enrolment_id=r.enrolment_id,
        amount=r.held,
        allocations=r.allocations,
        reason=reason,
    )


def release(state: WalletState, cmd: ReleaseReservation, now: datetime) -> list[LedgerEvent]:
    r = existing_reservation(state, cmd.reservation_id)
    if r.status in ("released", "expired"):
        return []
    if r.status != "active":
        raise ReservationNotActive(f"reservation {r.reservation_id} is {r.status}")
    decision = Decision(state, cmd.account_id)
    decision.emit(released(cmd.account_id, r, cmd.reason, now))
    decision.expire_returned((a.lot_id for a in r.allocations), now)
    return decision.events


def expire_reservations(
    state: WalletState, cmd: ExpireReservations, now: datetime
) -> list[LedgerEvent]:
    due = sorted(
        (r for r in state.reservations.values() if r.status == "active" and r.expires_at <= now),
        key=lambda r: (r.expires_at, r.reserved_version),
    )
    decision = Decision(state, cmd.account_id)
    for r in due:
        decision.emit(released(cmd.account_id, r, "expired", now))
    decision.expire_returned((a.lot_id for r in due for a in r.allocations), now)
    return decision.events


__all__ = [
    "DEFAULT_RESERVATION_LIFETIME",
    "capture",
    "capture_refused",
    "existing_reservation",
    "expire_reservations",
    "release",
    "released",
    "reservation_refused",
    "reserve",
]
