"""Reversals: a compensating entry for a grant (what is left of its lot is revoked) or for a
capture (the credit goes back to the lots it was taken from); the original stays on record."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from services.ledger.commands import CaptureTarget, GrantTarget, ReverseEntry
from shared.events.ledger import EntryReversed, LedgerEvent, LotAmount

from .decision import Decision
from .errors import (
    LotNotFound,
    LotReserved,
    LotSpent,
    NotCaptured,
    NothingToReverse,
)
from .reservations import existing_reservation
from .state import WalletState


def reverse(state: WalletState, cmd: ReverseEntry, now: datetime) -> list[LedgerEvent]:
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
            reason_code=cmd.reason_code,
            actor=cmd.actor,
        )
    ]


def _reverse_capture(
    state: WalletState, cmd: ReverseEntry, target: CaptureTarget, now: datetime
) -> list[LedgerEvent]:
    r = existing_reservation(state, target.reservation_id)
    if r.reversed_version is not None:
        return []
    if r.status != "captured" or r.captured_version is None:
        raise NotCaptured(f"reservation {r.reservation_id} is {r.status}, not captured")
    decision = Decision(state, cmd.account_id)
    decision.emit(
        EntryReversed(
            account_id=cmd.account_id,
            occurred_at=now,
            target_event="ledger.ReservationCaptured",
            target_version=r.captured_version,
            reservation_id=r.reservation_id,
            amount=r.captured,
            allocations=r.captured_allocations,
            reason_code=cmd.reason_code,
            actor=cmd.actor,
        )
    )
    decision.expire_returned((a.lot_id for a in r.captured_allocations), now)
    return decision.events


__all__ = ["reverse"]
