"""The money identities of a wallet (see :mod:`.state`), asserted after every decision and
on every lot an event changes: a broken identity is a bug, never a balance to keep."""

from __future__ import annotations

import uuid

from .errors import InvariantViolation
from .state import Lot, WalletState


def check_lot(lot: Lot) -> Lot:
    if lot.remaining < 0 or lot.reserved < 0 or lot.reserved > lot.remaining:
        raise InvariantViolation(
            f"lot {lot.lot_id}: remaining {lot.remaining}, reserved {lot.reserved}"
        )
    return lot


def assert_invariants(state: WalletState) -> None:
    """Raise ``InvariantViolation`` unless every amount is consistent (see :mod:`.state`)."""
    held: dict[uuid.UUID, int] = {}
    for r in state.reservations.values():
        if r.status == "active":
            if r.held <= 0 or sum(a.amount for a in r.allocations) != r.held:
                raise InvariantViolation(f"reservation {r.reservation_id} does not add up")
            for a in r.allocations:
                held[a.lot_id] = held.get(a.lot_id, 0) + a.amount
    for lot in state.lots.values():
        check_lot(lot)
        if lot.reserved != held.get(lot.lot_id, 0):
            raise InvariantViolation(f"lot {lot.lot_id} reserved {lot.reserved} != reservations")
        if lot.amount + lot.refunded != lot.remaining + lot.spent + lot.expired + lot.revoked:
            raise InvariantViolation(f"lot {lot.lot_id} does not add up")
    reserved = state.reserved
    available = state.remaining - reserved  # state.available, summed once
    if available < 0 or reserved < 0:
        raise InvariantViolation("negative balance")
    inflow = state.granted_total + state.reversed_capture_total
    outflow = (
        available + reserved + state.spent_total + state.expired_total + state.reversed_grant_total
    )
    if inflow != outflow:
        raise InvariantViolation(f"credit not conserved: {inflow} in, {outflow} accounted for")


__all__ = ["assert_invariants", "check_lot"]
