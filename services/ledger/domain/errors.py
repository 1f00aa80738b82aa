"""The ledger's typed domain errors, each with a stable ``code`` clients can rely on.

Each derives from :class:`shared.errors.DomainError`; its ``kind`` tells the one exception
handler how to answer: ``not_found`` (404), ``conflict`` (409: the wallet's state forbids
it), ``invalid`` (422: the command can never succeed as written), ``internal`` (500: an
invariant broke, a bug or a corrupt stream).
A reservation that cannot be honoured is not an error but a ``ReservationRejected`` event,
because the payments saga waits for an answer either way.
"""

from __future__ import annotations

from shared.errors import DomainError


class LedgerError(DomainError):
    code = "ledger_error"
    kind = "invalid"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)


class WalletNotFound(LedgerError):
    code = "wallet_not_found"
    kind = "not_found"


class WalletIsClosed(LedgerError):
    code = "wallet_closed"
    kind = "conflict"


class LotNotFound(LedgerError):
    code = "lot_not_found"
    kind = "not_found"


class ReservationNotFound(LedgerError):
    code = "reservation_not_found"
    kind = "not_found"


class ReservationNotActive(LedgerError):
    """The reservation was already captured, released or expired."""

    code = "reservation_not_active"
    kind = "conflict"


class CaptureExceedsReservation(LedgerError):
    code = "capture_exceeds_reservation"
    kind = "invalid"


class ExpiryInPast(LedgerError):
    """A grant or a reservation whose expiry is not after the decision's instant."""

    code = "expiry_in_past"
    kind = "invalid"


class IdConflict(LedgerError):
    """A caller-chosen id reused for a different request (not a redelivery)."""

    code = "id_conflict"
    kind = "conflict"


class LotReserved(LedgerError):
    """A grant cannot be reversed while part of its lot is held by a reservation."""

    code = "lot_reserved"
    kind = "conflict"


class LotSpent(LedgerError):
    """A grant cannot be reversed once part of its lot was spent (reverse the captures first)."""

    code = "lot_spent"
    kind = "conflict"


class NothingToReverse(LedgerError):
    """The grant's lot holds nothing any more (it expired)."""

    code = "nothing_to_reverse"
    kind = "conflict"


class NotCaptured(LedgerError):
    """Only a captured reservation can have its capture reversed."""

    code = "not_captured"
    kind = "conflict"


class InvariantViolation(LedgerError):
    """An event that cannot apply to the state, or a state that breaks an invariant."""

    code = "invariant_violation"
    kind = "internal"


__all__ = [
    "CaptureExceedsReservation",
    "ExpiryInPast",
    "IdConflict",
    "InvariantViolation",
    "LedgerError",
    "LotNotFound",
    "LotReserved",
    "LotSpent",
    "NotCaptured",
    "NothingToReverse",
    "ReservationNotActive",
    "ReservationNotFound",
    "WalletIsClosed",
    "WalletNotFound",
]
