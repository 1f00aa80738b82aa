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

from datetime import UTC, datetime
from typing import assert_never

from services.ledger.commands import (
    CaptureReservation,
    CloseWallet,
    Command,
    ExpireLots,
    ExpireReservations,
    GrantCredits,
    NoteProfile,
    OpenWallet,
    ReinstateWallet,
    ReleaseReservation,
    ReserveCredits,
    ReverseEntry,
    SuspendWallet,
)
from shared.events.ledger import (
    LedgerEvent,
    ProfileNoted,
    WalletClosed,
    WalletOpened,
    WalletReinstated,
    WalletSuspended,
)

from .errors import InvariantViolation, WalletNotFound
from .evolve import replay
from .grants import expire_lots, grant
from .invariants import assert_invariants
from .reservations import capture, expire_reservations, release, reserve
from .reversals import reverse
from .state import WalletState


def decide(state: WalletState, command: Command, now: datetime) -> list[LedgerEvent]:
    """The events ``command`` calls for on ``state`` at ``now`` (``[]`` if nothing changes).

    Raises a ``LedgerError`` subclass for a command that cannot apply.
    """
    return decide_folded(state, command, now)[0]


def decide_folded(
    state: WalletState, command: Command, now: datetime
) -> tuple[list[LedgerEvent], WalletState]:
    """:func:`decide`, and the wallet after its events: the state whose invariants were
    checked (``state`` itself when nothing changes), so a caller need not fold them again."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state.account_id is not None and state.account_id != command.account_id:
        raise InvariantViolation(f"command for {command.account_id} on wallet {state.account_id}")
    events = _decide(state, command, now.astimezone(UTC))
    # Fold the decision once more and assert the invariants: an event list that would not
    # replay or would break a balance (a bug here) must fail now, not be appended to a stream
    # that is kept forever.
    if not events:
        return events, state
    after = replay(events, state)
    assert_invariants(after)
    return events, after


def _decide(state: WalletState, command: Command, now: datetime) -> list[LedgerEvent]:
    match command:
        case OpenWallet():
            return _open(state, command, now)
        case NoteProfile():
            return _note_profile(state, command, now)
        case GrantCredits():
            return grant(state, command, now)
        case ReserveCredits():
            return reserve(state, command, now)
        case CaptureReservation():
            return capture(state, command, now)
        case ReleaseReservation():
            return release(state, command, now)
        case ExpireReservations():
            return expire_reservations(state, command, now)
        case ExpireLots():
            return expire_lots(state, command, now)
        case ReverseEntry():
            return reverse(state, command, now)
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
            return [
                WalletSuspended(
                    account_id=cmd.account_id, occurred_at=now, reason_code=cmd.reason_code
                )
            ]
        case ReinstateWallet():
            if state.status == "open":
                return []
            return [
                WalletReinstated(
                    account_id=cmd.account_id, occurred_at=now, reason_code=cmd.reason_code
                )
            ]
        case CloseWallet():
            return [
                WalletClosed(
                    account_id=cmd.account_id, occurred_at=now, reason_code=cmd.reason_code
                )
            ]
        case _:
            assert_never(cmd)


__all__ = ["decide"]
