"""The ledger's rules: ``decide(state, command, now)`` turns a command into the events to append.

Pure: the clock comes in as ``now``, nothing is read or written. Every decision is checked by
folding its own events with ``evolve`` before it is returned, so ``decide`` cannot produce a
stream that would not replay.

Rules worth knowing before calling it:

- Redelivery is harmless: a command whose caller-chosen id (lot, reservation) was already
  applied, a capture of a captured reservation, a release of a released one, a reversal of
  a reversed entry, a statutory grant for a year already granted, a status change to the
  status the wallet already has: all decide ``[]``. The same id reused for a *different*
  request raises ``IdConflict``. Idempotency checks come before status checks, so a grant
  redelivered after the wallet was closed still decides ``[]``.
- A reservation that cannot be honoured decides a ``ReservationRejected`` (never an error):
  ``no_wallet``, ``account_closed``, ``account_suspended``, ``insufficient_credit``.
- Lot order for a reservation: earmarked lots whose earmark matches the course, then
  unearmarked ones; within each, soonest expiry first (no expiry last), then oldest grant.
  A lot whose earmark does not match the course, or that is past its expiry at ``now``
  (swept or not), is never used.
- Suspension stops new reservations only; grants, captures, releases and reversals go on.
  Closing stops grants and reservations; existing reservations may still be captured or
  released (training already delivered is paid) and reversals remain possible. Closed is
  final: suspend and reinstate of a closed wallet decide ``[]``.
- Credit a reservation held on a lot is honoured after that lot's expiry; when such credit
  comes back (release, expiry of the reservation, partial capture, reversal of a capture),
  the same decision expires it with a ``LotExpired`` so that expired credit never becomes
  spendable again, and the audit trail shows both the return and the expiry.
- A reversed statutory grant still counts as that year's grant: the yearly allocation does
  not grant it again (reversals are deliberate corrections by an admin).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import assert_never

from services.ledger.commands import (
    CaptureReservation,
    CaptureTarget,
    CloseWallet,
    Command,
    ExpireLots,
    ExpireReservations,
    GrantCredits,
    GrantTarget,
    NoteProfile,
    OpenWallet,
    ReinstateWallet,
    ReleaseReservation,
    ReserveCredits,
    ReverseEntry,
    SuspendWallet,
)
from shared.events.ledger import (
    CreditsGranted,
    CreditsReserved,
    EntryReversed,
    LedgerEvent,
    LotAmount,
    LotExpired,
    ProfileNoted,
    RejectionReason,
    ReleaseReason,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
    WalletClosed,
    WalletOpened,
    WalletReinstated,
    WalletSuspended,
)

from .errors import (
    CaptureExceedsReservation,
    ExpiryInPast,
    IdConflict,
    InvariantViolation,
    LotNotFound,
    LotReserved,
    LotSpent,
    NotCaptured,
    NothingToReverse,
    ReservationNotActive,
    ReservationNotFound,
    WalletIsClosed,
    WalletNotFound,
)
from .selection import NEVER, usable_lots
from .state import Lot, Reservation, WalletState, assert_invariants, evolve, replay

DEFAULT_RESERVATION_LIFETIME = timedelta(days=180)
"""How long a reservation holds credit when the caller gives no ``expires_at``: long enough
for a course to run and be claimed; the payments service normally sets its own."""


class _Decision:
    """Events decided so far, and the state they lead to (each event checked by evolve)."""

    def __init__(self, state: WalletState, account_id: uuid.UUID) -> None:
        self.state = state
        self.account_id = account_id
        self.events: list[LedgerEvent] = []

    def emit(self, event: LedgerEvent) -> None:
        self.state = evolve(self.state, event)
        self.events.append(event)

    def expire_returned(self, lot_ids: Iterable[uuid.UUID], now: datetime) -> None:
        """Expire credit that came back to lots already past their expiry."""
        for lot_id in dict.fromkeys(lot_ids):
            lot = self.state.lots[lot_id]
            if lot.is_due(now) and lot.free > 0:
                self.emit(_lot_expired(self.account_id, lot, now))


def _lot_expired(account_id: uuid.UUID, lot: Lot, now: datetime) -> LotExpired:
    return LotExpired(account_id=account_id, occurred_at=now, lot_id=lot.lot_id, amount=lot.free)


def decide(state: WalletState, command: Command, now: datetime) -> list[LedgerEvent]:
    """The events ``command`` calls for on ``state`` at ``now`` (``[]`` if nothing changes).

    Raises a ``LedgerError`` subclass for a command that cannot apply.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state.account_id is not None and state.account_id != command.account_id:
        raise InvariantViolation(f"command for {command.account_id} on wallet {state.account_id}")
    events = _decide(state, command, now.astimezone(UTC))
    # Fold the decision once more and assert the invariants: an event list that would not
    # replay or would break a balance (a bug here) must fail now, not be appended to a stream
    # that is kept forever.
    if events:
        assert_invariants(replay(events, state))
    return events


def _decide(state: WalletState, command: Command, now: datetime) -> list[LedgerEvent]:
    match command:
        case OpenWallet():
            return _open(state, command, now)
        case NoteProfile():
            return _note_profile(state, command, now)
        case GrantCredits():
            return _grant(state, command, now)
        case ReserveCredits():
            return _reserve(state, command, now)
        case CaptureReservation():
            return _capture(state, command, now)
        case ReleaseReservation():
            return _release(state, command, now)
        case ExpireReservations():
            return _expire_reservations(state, command, now)
        case ExpireLots():
            return _expire_lots(state, command, now)
        case ReverseEntry():
            return _reverse(state, command, now)
        case SuspendWallet() | ReinstateWallet() | CloseWallet():
            return _change_status(state, command, now)
        case _:
            assert_never(command)


def _open(state: WalletState, cmd: OpenWallet, now: datetime) -> list[LedgerEvent]:
    if state.status != "absent":
        return []
    events: list[LedgerEvent] = [WalletOpened(account_id=cmd.account_id, occurred_at=now)]
    if cmd.profile is not None:
        events.append(ProfileNoted(account_id=cmd.account_id, occurred_at=now, profile=cmd.profile))
    return events


def _note_profile(state: WalletState, cmd: NoteProfile, now: datetime) -> list[LedgerEvent]:
    if state.status == "absent":
        raise WalletNotFound(f"no wallet for account {cmd.account_id}")
    if state.profile == cmd.profile:
        return []
    return [ProfileNoted(account_id=cmd.account_id, occurred_at=now, profile=cmd.profile)]


def _grant(state: WalletState, cmd: GrantCredits, now: datetime) -> list[LedgerEvent]:
    known = state.lots.get(cmd.lot_id)
    if known is not None:
        same = (
            known.amount == cmd.amount
            and known.funder_id == cmd.funder_id
            and known.kind == cmd.kind
            and known.year == cmd.year
            and known.expires_at == cmd.expires_at
            and known.earmark == cmd.earmark
        )
        if not same:
            raise IdConflict(f"lot {cmd.lot_id} was granted with other terms")
        return []
    if cmd.kind == "statutory" and cmd.year in state.years_granted:
        return []
    if state.status == "absent":
        raise WalletNotFound(f"no wallet for account {cmd.account_id}")
    if state.status == "closed":
        raise WalletIsClosed(f"wallet {cmd.account_id} is closed")
    if cmd.expires_at is not None and cmd.expires_at <= now:
        raise ExpiryInPast(f"lot {cmd.lot_id} would expire at {cmd.expires_at}, before {now}")
    return [
        CreditsGranted(
            account_id=cmd.account_id,
            occurred_at=now,
            lot_id=cmd.lot_id,
            amount=cmd.amount,
            funder_id=cmd.funder_id,
            reason=cmd.reason,
            kind=cmd.kind,
            year=cmd.year,
            expires_at=cmd.expires_at,
            earmark=cmd.earmark,
            allocation_id=cmd.allocation_id,
        )
    ]


def _reserve(state: WalletState, cmd: ReserveCredits, now: datetime) -> list[LedgerEvent]:
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
        return [
            ReservationRejected(
                account_id=cmd.account_id,
                occurred_at=now,
                reservation_id=cmd.reservation_id,
                enrolment_id=cmd.enrolment_id,
                reason=reason,
                requested=cmd.amount,
                available=usable,
            )
        ]

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


def _existing(state: WalletState, reservation_id: uuid.UUID) -> Reservation:
    r = state.reservations.get(reservation_id)
    if r is None:
        raise ReservationNotFound(f"no reservation {reservation_id}")
    return r


def _capture(state: WalletState, cmd: CaptureReservation, now: datetime) -> list[LedgerEvent]:
    r = _existing(state, cmd.reservation_id)
    if r.status == "captured":
        if r.captured != cmd.amount:
            raise IdConflict(f"reservation {r.reservation_id} was captured for {r.captured}")
        return []
    if r.status != "active":
        raise ReservationNotActive(f"reservation {r.reservation_id} is {r.status}")
    if cmd.amount > r.amount:
        raise CaptureExceedsReservation(
            f"capture of {cmd.amount} exceeds reservation {r.reservation_id} of {r.amount}"
        )
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
        if a.amount - take:
            given_back.append(LotAmount(lot_id=a.lot_id, amount=a.amount - take))
    decision = _Decision(state, cmd.account_id)
    decision.emit(
        ReservationCaptured(
            account_id=cmd.account_id,
            occurred_at=now,
            reservation_id=r.reservation_id,
            enrolment_id=r.enrolment_id,
            amount=cmd.amount,
            released=r.amount - cmd.amount,
            allocations=tuple(taken),
            released_allocations=tuple(given_back),
        )
    )
    decision.expire_returned((a.lot_id for a in given_back), now)
    return decision.events


def _released(
    account_id: uuid.UUID, r: Reservation, reason: ReleaseReason, now: datetime
) -> ReservationReleased:
    return ReservationReleased(
        account_id=account_id,
        occurred_at=now,
        reservation_id=r.reservation_id,
        enrolment_id=r.enrolment_id,
        amount=r.amount,
        allocations=r.allocations,
        reason=reason,
    )


def _release(state: WalletState, cmd: ReleaseReservation, now: datetime) -> list[LedgerEvent]:
    r = _existing(state, cmd.reservation_id)
    if r.status in ("released", "expired"):
        return []
    if r.status != "active":
        raise ReservationNotActive(f"reservation {r.reservation_id} is {r.status}")
    decision = _Decision(state, cmd.account_id)
    decision.emit(_released(cmd.account_id, r, cmd.reason, now))
    decision.expire_returned((a.lot_id for a in r.allocations), now)
    return decision.events


def _expire_reservations(
    state: WalletState, cmd: ExpireReservations, now: datetime
) -> list[LedgerEvent]:
    due = sorted(
        (r for r in state.reservations.values() if r.status == "active" and r.expires_at <= now),
        key=lambda r: (r.expires_at, r.reserved_version),
    )
    decision = _Decision(state, cmd.account_id)
    for r in due:
        decision.emit(_released(cmd.account_id, r, "expired", now))
    decision.expire_returned((a.lot_id for r in due for a in r.allocations), now)
    return decision.events


def _expire_lots(state: WalletState, cmd: ExpireLots, now: datetime) -> list[LedgerEvent]:
    # Only the free part expires: credit held by a reservation was promised to an enrolment
    # before the expiry and stays usable by that enrolment's capture.
    due = sorted(
        (lot for lot in state.lots.values() if lot.is_due(now) and lot.free > 0),
        key=lambda lot: (lot.expires_at or NEVER, lot.granted_version),
    )
    return [_lot_expired(cmd.account_id, lot, now) for lot in due]


def _reverse(state: WalletState, cmd: ReverseEntry, now: datetime) -> list[LedgerEvent]:
    match cmd.target:
        case GrantTarget():
            return _reverse_grant(state, cmd, cmd.target, now)
        case CaptureTarget():
            return _reverse_capture(state, cmd, cmd.target, now)
        case _:
            assert_never(cmd.target)


def _reverse_grant(
    state: WalletState, cmd: ReverseEntry, target: GrantTarget, now: datetime
) -> list[LedgerEvent]:
    lot = state.lots.get(target.lot_id)
    if lot is None:
        raise LotNotFound(f"no lot {target.lot_id}")
    if lot.reversed_version is not None:
        return []
    if lot.reserved:
        raise LotReserved(f"lot {lot.lot_id} holds {lot.reserved} for reservations")
    if lot.spent - lot.refunded:
        raise LotSpent(f"{lot.spent - lot.refunded} of lot {lot.lot_id} was spent")
    if lot.remaining == 0:
        raise NothingToReverse(f"lot {lot.lot_id} holds nothing any more")
    return [
        EntryReversed(
            account_id=cmd.account_id,
            occurred_at=now,
            target_event="ledger.CreditsGranted",
            target_version=lot.granted_version,
            lot_id=lot.lot_id,
            amount=lot.remaining,
            allocations=(LotAmount(lot_id=lot.lot_id, amount=lot.remaining),),
            reason=cmd.reason,
            actor=cmd.actor,
        )
    ]


def _reverse_capture(
    state: WalletState, cmd: ReverseEntry, target: CaptureTarget, now: datetime
) -> list[LedgerEvent]:
    r = _existing(state, target.reservation_id)
    if r.reversed_version is not None:
        return []
    if r.status != "captured" or r.captured_version is None:
        raise NotCaptured(f"reservation {r.reservation_id} is {r.status}, not captured")
    decision = _Decision(state, cmd.account_id)
    decision.emit(
        EntryReversed(
            account_id=cmd.account_id,
            occurred_at=now,
            target_event="ledger.ReservationCaptured",
            target_version=r.captured_version,
            reservation_id=r.reservation_id,
            amount=r.captured,
            allocations=r.captured_allocations,
            reason=cmd.reason,
            actor=cmd.actor,
        )
    )
    decision.expire_returned((a.lot_id for a in r.captured_allocations), now)
    return decision.events


def _change_status(
    state: WalletState, cmd: SuspendWallet | ReinstateWallet | CloseWallet, now: datetime
) -> list[LedgerEvent]:
    if state.status == "absent":
        raise WalletNotFound(f"no wallet for account {cmd.account_id}")
    if state.status == "closed":
        return []
    match cmd:
        case SuspendWallet():
            if state.status == "suspended":
                return []
            return [WalletSuspended(account_id=cmd.account_id, occurred_at=now, reason=cmd.reason)]
        case ReinstateWallet():
            if state.status == "open":
                return []
            return [WalletReinstated(account_id=cmd.account_id, occurred_at=now, reason=cmd.reason)]
        case CloseWallet():
            return [WalletClosed(account_id=cmd.account_id, occurred_at=now, reason=cmd.reason)]
        case _:
            assert_never(cmd)


__all__ = ["DEFAULT_RESERVATION_LIFETIME", "decide"]
