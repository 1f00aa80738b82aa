"""The wallet of one account as its ledger events leave it: ``WalletState``, ``Lot``,
``Reservation`` (folding events into it is :mod:`.evolve`; the identities below are
checked by :mod:`.invariants`).

Frozen values, no I/O and no clock (every instant comes from the events).

What the amounts mean
---------------------
Per lot:

- ``remaining`` is the credit still in the lot. It *includes* the part held by active
  reservations: a reservation moves nothing out of a lot, only a capture, an expiry or a
  grant reversal does (and a capture reversal puts credit back).
- ``reserved`` is the part of ``remaining`` held by active reservations.
- ``free = remaining - reserved`` is what a new reservation, an expiry or a grant reversal
  may take.
- ``amount + refunded == remaining + spent + expired + revoked`` (every term gross).

Per wallet (the design's "balance = what remains in lots - what is reserved"):

- ``available = sum(remaining) - reserved = sum(free)``, ``reserved = sum(active
  reservations) = sum(lot.reserved)``; both are always >= 0, and so is every ``remaining``.
- The conservation identity, checked by ``assert_invariants``::

      granted_total + reversed_capture_total
          == available + reserved + spent_total + expired_total + reversed_grant_total

  or, with the net totals, ``net_granted == available + reserved + net_spent + expired_total``.

``version`` is the number of ledger events folded in, which is the stream version of the
last one; ``Lot.granted_version`` and ``Reservation.captured_version`` are the stream versions
a reversal refers to. ``available`` ignores the clock: a lot past its expiry keeps counting
until ``ExpireLots`` expires it, but ``decide`` never lets a reservation use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

from shared.events.ledger import (
    CourseRef,
    Earmark,
    GrantKind,
    GrantReasonCode,
    LotAmount,
    WalletProfile,
)

WalletStatus = Literal["absent", "open", "suspended", "closed"]
ReservationStatus = Literal["active", "captured", "released", "expired"]


@dataclass(frozen=True, slots=True)
class Lot:
    """The credit of one grant."""

    lot_id: uuid.UUID
    amount: int
    funder_id: str
    reason_code: GrantReasonCode
    kind: GrantKind
    year: int | None
    expires_at: datetime | None
    earmark: Earmark | None
    allocation_id: uuid.UUID | None
    granted_at: datetime
    granted_version: int
    remaining: int
    reserved: int = 0
    spent: int = 0
    refunded: int = 0
    expired: int = 0
    revoked: int = 0
    reversed_version: int | None = None

    @property
    def free(self) -> int:
        return self.remaining - self.reserved

    def is_due(self, now: datetime) -> bool:
        """Past its expiry at ``now`` (an expiry instant is already too late)."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credit held for one enrolment: ``amount`` was reserved, ``allocations`` is what it
    holds now (what it held last, once it ended), in the order a capture takes them. It is
    captured in parts (``captures``: the parts' ids, oldest first); the final part releases
    what is left (``released``), so ``captured + released + held == amount`` at every
    step."""

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    course: CourseRef
    requested: int
    amount: int
    up_to: bool
    allocations: tuple[LotAmount, ...]
    reserved_at: datetime
    expires_at: datetime
    reserved_version: int
    status: ReservationStatus = "active"
    captured: int = 0
    released: int = 0
    captured_allocations: tuple[LotAmount, ...] = ()
    captured_version: int | None = None
    reversed_version: int | None = None
    captures: tuple[uuid.UUID | None, ...] = ()

    @property
    def held(self) -> int:
        """What it still holds (0 once captured, released or expired)."""
        return self.amount - self.captured - self.released if self.status == "active" else 0


@dataclass(frozen=True, slots=True)
class WalletState:
    account_id: uuid.UUID | None = None
    status: WalletStatus = "absent"
    profile: WalletProfile | None = None
    lots: Mapping[uuid.UUID, Lot] = field(default_factory=dict)
    reservations: Mapping[uuid.UUID, Reservation] = field(default_factory=dict)
    rejected: frozenset[uuid.UUID] = frozenset()
    years_granted: frozenset[int] = frozenset()
    granted_total: int = 0
    spent_total: int = 0
    expired_total: int = 0
    reversed_grant_total: int = 0
    reversed_capture_total: int = 0
    version: int = 0

    @property
    def reserved(self) -> int:
        return sum(r.held for r in self.reservations.values() if r.status == "active")

    @property
    def remaining(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    @property
    def available(self) -> int:
        return self.remaining - self.reserved

    @property
    def net_granted(self) -> int:
        return self.granted_total - self.reversed_grant_total

    @property
    def net_spent(self) -> int:
        return self.spent_total - self.reversed_capture_total

    def live_reservation(self, enrolment_id: uuid.UUID) -> Reservation | None:
        """The enrolment's active or captured reservation, if any."""
        for r in self.reservations.values():
            if r.enrolment_id == enrolment_id and r.status in ("active", "captured"):
                return r
        return None


V = TypeVar("V", WalletState, Lot, Reservation)


_NAMES: dict[type, tuple[str, ...]] = {}


def replace(value: V, **changes: Any) -> V:
    """``dataclasses.replace`` for these frozen values (none has an ``InitVar`` or a
    ``__post_init__``), without its per-call introspection: folding a stream copies a
    state or a lot per event, and the allocation run folds every wallet."""
    cls = type(value)
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    new = object.__new__(cls)
    for name in names:
        kept = changes.pop(name) if name in changes else getattr(value, name)
        object.__setattr__(new, name, kept)
    if changes:
        raise TypeError(f"{cls.__name__} has no field {', '.join(changes)}")
    return new


__all__ = [
    "Lot",
    "Reservation",
    "ReservationStatus",
    "WalletState",
    "WalletStatus",
    "replace",
]
