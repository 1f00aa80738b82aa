"""Folding ledger events into a wallet: ``evolve`` (one event) and ``replay`` (a stream).

Pure: no I/O and no clock (every instant comes from the events). ``evolve`` refuses an event
that cannot apply (``InvariantViolation``) rather than produce a wrong balance, so a corrupt
or reordered stream fails loudly on replay. What each amount means is in :mod:`.state`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from shared.events.ledger import (
    CaptureRejected,
    CreditsGranted,
    CreditsReserved,
    EntryReversed,
    LedgerEvent,
    LotAmount,
    LotExpired,
    ProfileNoted,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
    WalletClosed,
    WalletOpened,
    WalletReinstated,
    WalletSuspended,
)

from .errors import InvariantViolation
from .invariants import check_lot
from .state import Lot, Reservation, ReservationStatus, WalletState, replace

WalletStatus = Literal["absent", "open", "suspended", "closed"]


def _lot(lots: Mapping[uuid.UUID, Lot], lot_id: uuid.UUID) -> Lot:
    try:
        return lots[lot_id]
    except KeyError:
        raise InvariantViolation(f"lot {lot_id} does not exist") from None


def _reservation(state: WalletState, reservation_id: uuid.UUID) -> Reservation:
    try:
        return state.reservations[reservation_id]
    except KeyError:
        raise InvariantViolation(f"reservation {reservation_id} does not exist") from None


def _active(state: WalletState, reservation_id: uuid.UUID) -> Reservation:
    r = _reservation(state, reservation_id)
    if r.status != "active":
        raise InvariantViolation(f"reservation {reservation_id} is {r.status}, not active")
    return r


def _unhold(lots: dict[uuid.UUID, Lot], allocations: Iterable[LotAmount]) -> None:
    for a in allocations:
        lot = _lot(lots, a.lot_id)
        if a.amount > lot.reserved:
            raise InvariantViolation(f"lot {a.lot_id} holds less than {a.amount} in reservations")
        lots[a.lot_id] = replace(lot, reserved=lot.reserved - a.amount)


def _next(state: WalletState, event: LedgerEvent, version: int, **changes: Any) -> WalletState:
    """``state`` after ``event``: its ``changes``, the event's account and ``version``."""
    return replace(state, account_id=event.account_id, version=version, **changes)


def evolve(state: WalletState, event: LedgerEvent) -> WalletState:
    """The wallet after ``event``; raises ``InvariantViolation`` if it cannot apply."""
    if state.account_id is not None and event.account_id != state.account_id:
        raise InvariantViolation(f"event for account {event.account_id} in another stream")
    version = state.version + 1
    # each arm copies the state once, with the new version and the account (``_next``)

    match event:
        case WalletOpened():
            if state.status != "absent":
                raise InvariantViolation("wallet opened twice")
            return _next(state, event, version, status="open")

        case ProfileNoted():
            return _next(state, event, version, profile=event.profile)

        case CreditsGranted():
            if event.lot_id in state.lots:
                raise InvariantViolation(f"lot {event.lot_id} granted twice")
            lot = Lot(
                lot_id=event.lot_id,
                amount=event.amount,
                funder_id=event.funder_id,
                reason_code=event.reason_code,
                kind=event.kind,
                year=event.year,
                expires_at=event.expires_at,
                earmark=event.earmark,
                allocation_id=event.allocation_id,
                granted_at=event.occurred_at,
                granted_version=version,
                remaining=event.amount,
            )
            years = state.years_granted
            if event.kind == "statutory" and event.year is not None:
                years = years | {event.year}
            return _next(
                state,
                event,
                version,
                lots={**state.lots, lot.lot_id: lot},
                years_granted=years,
                granted_total=state.granted_total + event.amount,
            )

        case CreditsReserved():
            if event.reservation_id in state.reservations:
                raise InvariantViolation(f"reservation {event.reservation_id} made twice")
            lots = dict(state.lots)
            for a in event.allocations:
                lot = _lot(lots, a.lot_id)
                if a.amount > lot.free:
                    raise InvariantViolation(f"lot {a.lot_id} has less than {a.amount} free")
                lots[a.lot_id] = replace(lot, reserved=lot.reserved + a.amount)
            reservation = Reservation(
                reservation_id=event.reservation_id,
                enrolment_id=event.enrolment_id,
                course=event.course,
                requested=event.requested,
                amount=event.amount,
                up_to=event.up_to,
                allocations=event.allocations,
                reserved_at=event.occurred_at,
                expires_at=event.expires_at,
                reserved_version=version,
            )
            return _next(
                state,
                event,
                version,
                lots=lots,
                reservations={**state.reservations, reservation.reservation_id: reservation},
            )

        case ReservationRejected():
            return _next(state, event, version, rejected=state.rejected | {event.reservation_id})

        case ReservationCaptured():
            return _evolve_capture(state, event, version)

        case CaptureRejected():
            return _next(state, event, version)

        case ReservationReleased():
            r = _active(state, event.reservation_id)
            if event.amount != r.held:
                raise InvariantViolation(f"release of {r.reservation_id} does not add up")
            lots = dict(state.lots)
            _unhold(lots, r.allocations)
            status: ReservationStatus = "expired" if event.reason == "expired" else "released"
            released = replace(r, status=status, released=event.amount)
            return _next(
                state,
                event,
                version,
                lots=lots,
                reservations={**state.reservations, r.reservation_id: released},
            )

        case LotExpired():
            lot = _lot(state.lots, event.lot_id)
            if event.amount > lot.free:
                raise InvariantViolation(f"lot {lot.lot_id} cannot expire more than it has free")
            lot = replace(
                lot, remaining=lot.remaining - event.amount, expired=lot.expired + event.amount
            )
            return _next(
                state,
                event,
                version,
                lots={**state.lots, lot.lot_id: lot},
                expired_total=state.expired_total + event.amount,
            )

        case EntryReversed():
            return _evolve_reversal(state, event, version)

        case WalletSuspended():
            return _next(state, event, version, status="suspended")

        case WalletReinstated():
            return _next(state, event, version, status="open")

        case WalletClosed():
            return _next(state, event, version, status="closed")

    raise InvariantViolation(f"not a ledger event the wallet knows: {type(event).__name__}")


def _minus(held: tuple[LotAmount, ...], taken: Iterable[LotAmount]) -> tuple[LotAmount, ...]:
    """``held`` less ``taken``, lot by lot, in ``held``'s order (emptied lots dropped)."""
    left = {a.lot_id: a.amount for a in held}
    for a in taken:
        if left.get(a.lot_id, 0) < a.amount:
            raise InvariantViolation(f"lot {a.lot_id} holds less than {a.amount} here")
        left[a.lot_id] -= a.amount
    return tuple(LotAmount(lot_id=a.lot_id, amount=left[a.lot_id]) for a in held if left[a.lot_id])


def _plus(total: tuple[LotAmount, ...], more: Iterable[LotAmount]) -> tuple[LotAmount, ...]:
    """``total`` and ``more`` merged lot by lot, first-seen order."""
    sums = {a.lot_id: a.amount for a in total}
    for a in more:
        sums[a.lot_id] = sums.get(a.lot_id, 0) + a.amount
    return tuple(LotAmount(lot_id=k, amount=v) for k, v in sums.items())


def _evolve_capture(state: WalletState, event: ReservationCaptured, version: int) -> WalletState:
    r = _active(state, event.reservation_id)
    held = r.held
    if event.final:
        if event.amount + event.released != held:
            raise InvariantViolation(f"capture of {r.reservation_id} does not add up")
    elif event.released or event.amount >= held:
        raise InvariantViolation(f"part capture of {r.reservation_id} does not leave a rest")
    lots = dict(state.lots)
    _unhold(lots, (*event.allocations, *event.released_allocations))
    left = _minus(r.allocations, (*event.allocations, *event.released_allocations))
    if left and event.final:
        raise InvariantViolation(f"final capture of {r.reservation_id} leaves a hold")
    for a in event.allocations:
        lot = _lot(lots, a.lot_id)
        lots[a.lot_id] = check_lot(
            replace(lot, remaining=lot.remaining - a.amount, spent=lot.spent + a.amount)
        )
    captured = replace(
        r,
        status="captured" if event.final else "active",
        captured=r.captured + event.amount,
        released=event.released,
        # once it ended, it shows what it held last (as a release does)
        allocations=r.allocations if event.final else left,
        captured_allocations=_plus(r.captured_allocations, event.allocations),
        captured_version=version,
        captures=(*r.captures, event.capture_id),
    )
    return _next(
        state,
        event,
        version,
        lots=lots,
        reservations={**state.reservations, r.reservation_id: captured},
        spent_total=state.spent_total + event.amount,
    )


def _named(target: uuid.UUID | None) -> uuid.UUID:
    # EntryReversed's validator guarantees the id its target kind needs.
    if target is None:
        raise InvariantViolation("reversal without its target's id")
    return target


def _evolve_reversal(state: WalletState, event: EntryReversed, version: int) -> WalletState:
    if event.target_event == "ledger.CreditsGranted":
        lot = _lot(state.lots, _named(event.lot_id))
        if lot.reversed_version is not None or lot.granted_version != event.target_version:
            raise InvariantViolation(f"grant of lot {lot.lot_id} cannot be reversed here")
        if event.amount > lot.free:
            raise InvariantViolation(f"lot {lot.lot_id} cannot give up more than it has free")
        lot = replace(
            lot,
            remaining=lot.remaining - event.amount,
            revoked=lot.revoked + event.amount,
            reversed_version=version,
        )
        return _next(
            state,
            event,
            version,
            lots={**state.lots, lot.lot_id: lot},
            reversed_grant_total=state.reversed_grant_total + event.amount,
        )

    r = _reservation(state, _named(event.reservation_id))
    if (
        r.status != "captured"
        or r.reversed_version is not None
        or r.captured_version != event.target_version
        or event.allocations != r.captured_allocations
    ):
        raise InvariantViolation(f"capture of {r.reservation_id} cannot be reversed here")
    lots = dict(state.lots)
    for a in event.allocations:
        lot = _lot(lots, a.lot_id)
        lots[a.lot_id] = replace(
            lot, remaining=lot.remaining + a.amount, refunded=lot.refunded + a.amount
        )
    return _next(
        state,
        event,
        version,
        lots=lots,
        reservations={**state.reservations, r.reservation_id: replace(r, reversed_version=version)},
        reversed_capture_total=state.reversed_capture_total + event.amount,
    )


def replay(events: Iterable[LedgerEvent], state: WalletState | None = None) -> WalletState:
    """Fold ``events`` (a stream, in order) into a wallet, from ``state`` or from nothing."""
    state = state if state is not None else WalletState()
    for e in events:
        state = evolve(state, e)
    return state


__all__ = ["evolve", "replay"]
