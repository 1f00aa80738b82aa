"""The ledger's pure domain: a wallet's state, the rules that decide events, the policy.

No I/O and no clock: handlers load a ``WalletState`` (``replay`` of the account's stream),
call ``decide(state, command, now)`` (or ``allocate_entitlement`` for the yearly run),
append the events it returns and fold them with ``evolve`` into the projections.

- ``state``: ``WalletState``, ``Lot``, ``Reservation`` and what each amount means.
- ``evolve``: ``evolve`` (one event) and ``replay`` (a stream), refusing what cannot apply.
- ``invariants``: ``assert_invariants``, the money identities (the balance identity).
- ``decide``: ``decide``, the one entry of the rules, and the wallet's lifecycle; the rules
  by concern in ``grants`` (grant, lot expiry), ``reservations`` (reserve, capture, release,
  reservation timeout) and ``reversals``, each emitting through a ``decision.Decision``.
- ``selection``: which lots a reservation draws on, in which order.
- ``policy``: ``EntitlementPolicy`` and the statutory grant it gives a wallet.
- ``errors``: ``LedgerError`` and its subclasses, each with a stable ``code``.
"""

from .decide import decide
from .errors import (
    CaptureExceedsReservation,
    ExpiryInPast,
    IdConflict,
    InvariantViolation,
    LedgerError,
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
from .evolve import evolve, replay
from .invariants import assert_invariants
from .policy import (
    LOW_QUALIFICATION,
    MAX_POLICY_AMOUNT,
    EntitlementPolicy,
    PolicyTerms,
    allocate_entitlement,
    entitlement_for,
    needs_of,
    statutory_held,
    yearly_amount,
)
from .reservations import DEFAULT_RESERVATION_LIFETIME
from .selection import spendable, usable_lots
from .state import Lot, Reservation, ReservationStatus, WalletState, WalletStatus

__all__ = [
    "DEFAULT_RESERVATION_LIFETIME",
    "LOW_QUALIFICATION",
    "MAX_POLICY_AMOUNT",
    "CaptureExceedsReservation",
    "EntitlementPolicy",
    "ExpiryInPast",
    "IdConflict",
    "InvariantViolation",
    "LedgerError",
    "Lot",
    "LotNotFound",
    "LotReserved",
    "LotSpent",
    "NotCaptured",
    "NothingToReverse",
    "PolicyTerms",
    "Reservation",
    "ReservationNotActive",
    "ReservationNotFound",
    "ReservationStatus",
    "WalletIsClosed",
    "WalletNotFound",
    "WalletState",
    "WalletStatus",
    "allocate_entitlement",
    "assert_invariants",
    "decide",
    "entitlement_for",
    "evolve",
    "needs_of",
    "replay",
    "spendable",
    "statutory_held",
    "usable_lots",
    "yearly_amount",
]
