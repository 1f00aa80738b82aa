"""Events published by the ledger service on the ``ledger`` topic, and their value objects.

An account's ledger stream is made of these events only: replaying them in order
(``services.ledger.domain.replay``) rebuilds the wallet, which is what auditors do years
later. So the payloads carry every fact the replay needs (which lots a reservation drew on,
how a capture split between lots, what a reversal compensated) instead of leaving it to be
recomputed by code that may have changed since.

Money is ``int`` minor units (strict: a float or a numeric string is refused), times are
timezone-aware and normalised to UTC, ids are UUIDs chosen by the caller so that retries
are safe. Every event is keyed by the account id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.accounts import NeedTier, StatusReasonCode
from shared.events.approvals import ApprovalDecided, ApprovalRequested
from shared.events.base import Actor, Event, UtcDatetime, event

Money = Annotated[int, Field(strict=True, gt=0)]
"""A positive amount in minor units of the deployment's currency."""

MoneyOrZero = Annotated[int, Field(strict=True, ge=0)]
"""A non-negative amount in minor units."""

GrantKind = Literal["statutory", "top_up"]
EmploymentStatus = Literal["employed", "unemployed", "self_employed", "inactive"]
RejectionReason = Literal[
    "insufficient_credit",
    "account_suspended",
    "account_closed",
    "no_wallet",
    # the request itself could not be honoured as written (an operator looks at it)
    "expiry_in_past",
    "id_conflict",
]
CaptureRefusal = Literal[
    "reservation_not_found",
    "reservation_expired",
    "reservation_released",
    "reservation_captured",
    "exceeds_reservation",
    "id_conflict",
]
ReleaseReason = Literal["released", "cancelled", "expired"]
ReversibleEvent = Literal["ledger.CreditsGranted", "ledger.ReservationCaptured"]
GrantReasonCode = Literal[
    "statutory", "top_up", "correction", "funder_programme", "cofunding", "other"
]
"""Why a lot was granted (a code: an event kept forever carries no free text); ``cofunding``:
a funder's co-funding rule paid an enrolment's shortfall, at its reservation."""
ReversalReasonCode = Literal[
    "duplicate_grant", "wrong_amount", "wrong_account", "fraud", "provider_error", "other"
]
"""Why an entry was reversed (a code: an event kept forever carries no free text)."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CourseRef(_Value):
    """What a reservation must know about a course to match earmarks (from the catalogue)."""

    course_id: uuid.UUID
    isced_field: str | None = Field(
        default=None, pattern=r"^[0-9]{2,4}$", description="ISCED-F 2013 code, e.g. '0613'"
    )
    eqf_level: int | None = Field(default=None, ge=1, le=8)
    tags: tuple[str, ...] = ()
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="where the course is given, as the catalogue codes it (co-funding rules)",
    )


class Earmark(_Value):
    """Which courses a lot may pay for.

    A course matches when it satisfies every non-empty criterion: its course id is listed;
    its EQF level is listed; its ISCED-F code starts with one of the listed codes (ISCED-F
    is hierarchical, so ``"06"`` covers ``"0613"``); it carries at least one listed tag.
    An earmark with no criterion would restrict nothing, so it is refused: use no earmark.
    """

    isced_fields: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,4}$")], ...] = ()
    eqf_levels: tuple[Annotated[int, Field(ge=1, le=8)], ...] = ()
    course_ids: tuple[uuid.UUID, ...] = ()
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _restricts_something(self) -> Earmark:
        if not (self.isced_fields or self.eqf_levels or self.course_ids or self.tags):
            raise ValueError("an earmark needs at least one criterion")
        return self

    def admits(self, course: CourseRef) -> bool:
        """Whether ``course`` satisfies every criterion this earmark sets (the one earmark
        rule: the ledger's reservations and the payments service's fee waiver both ask it)."""
        if self.course_ids and course.course_id not in self.course_ids:
            return False
        if self.eqf_levels and course.eqf_level not in self.eqf_levels:
            return False
        if self.isced_fields and (
            course.isced_field is None
            or not any(course.isced_field.startswith(code) for code in self.isced_fields)
        ):
            return False
        return not self.tags or bool(set(self.tags) & set(course.tags))


class LotAmount(_Value):
    """An amount taken from (or given back to) one lot."""

    lot_id: uuid.UUID
    amount: Money


class WalletProfile(_Value):
    """The ledger's own copy of an account's need profile, as the entitlement policy reads it.

    Kept apart from the accounts service's ``NeedProfile`` so that the ledger's stored events
    never change shape when the accounts schema evolves.
    """

    qualification_level: int = Field(ge=0, le=8, description="EQF level 0-8")
    employment_status: EmploymentStatus
    need_tier: NeedTier = "standard"
    employer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the learner's employer, as an id (employers' co-funding rules)",
    )


def _total(allocations: tuple[LotAmount, ...]) -> int:
    return sum(a.amount for a in allocations)


def _check_split(allocations: tuple[LotAmount, ...], amount: int, what: str) -> None:
    # The per-lot split is what a replay applies; a split that does not add up would make
    # the wallet disagree with the event's own total, so such an event cannot exist.
    if _total(allocations) != amount:
        raise ValueError(f"{what}: allocations add up to {_total(allocations)}, not {amount}")
    if len({a.lot_id for a in allocations}) != len(allocations):
        raise ValueError(f"{what}: a lot appears twice in allocations")


class LedgerEvent(Event):
    """Base of every ledger event: keyed by the account, stamped with the domain's clock."""

    account_id: uuid.UUID
    occurred_at: UtcDatetime

    def aggregate_id(self) -> str:
        return str(self.account_id)


@event("ledger.WalletOpened")
class WalletOpened(LedgerEvent):
    pass


@event("ledger.ProfileNoted", version=2)
class ProfileNoted(LedgerEvent):
    profile: WalletProfile


@event("ledger.CreditsGranted", version=2)
class CreditsGranted(LedgerEvent):
    """A new lot. ``kind="statutory"`` is the yearly entitlement (``year`` set, capped)."""

    lot_id: uuid.UUID
    amount: Money
    funder_id: str = Field(min_length=1)
    reason_code: GrantReasonCode
    kind: GrantKind
    year: int | None = None
    expires_at: UtcDatetime | None = None
    earmark: Earmark | None = None
    allocation_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _statutory_has_year(self) -> CreditsGranted:
        if self.kind == "statutory" and self.year is None:
            raise ValueError("a statutory grant needs its year")
        return self


@event("ledger.CreditsReserved")
class CreditsReserved(LedgerEvent):
    """Credit held for an enrolment; ``allocations`` lists the lots it holds, in the order
    a capture consumes them."""

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    course: CourseRef
    requested: Money
    amount: Money
    up_to: bool
    allocations: tuple[LotAmount, ...]
    expires_at: UtcDatetime

    @model_validator(mode="after")
    def _adds_up(self) -> CreditsReserved:
        _check_split(self.allocations, self.amount, "CreditsReserved")
        if self.amount > self.requested:
            raise ValueError("CreditsReserved: more reserved than requested")
        return self


@event("ledger.ReservationRejected")
class ReservationRejected(LedgerEvent):
    """No credit held; ``available`` is what this course could have used at that instant."""

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    reason: RejectionReason
    requested: Money
    available: MoneyOrZero


@event("ledger.ReservationCaptured")
class ReservationCaptured(LedgerEvent):
    """Credit spent: ``allocations`` were taken from the lots.

    A reservation is captured in one or several parts (``capture_id``: the caller's id of
    the part, the claim it pays). A part that is not ``final`` leaves the rest reserved; the
    final one gives ``released_allocations`` (what remained) back to the lots. Over a
    reservation's life, the parts captured plus what was released equal what was reserved.
    """

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    amount: Money
    released: MoneyOrZero
    allocations: tuple[LotAmount, ...]
    released_allocations: tuple[LotAmount, ...] = ()
    capture_id: uuid.UUID | None = None
    final: bool = True
    provider_id: str | None = None  # whom it pays, as payments said (None: not said)

    @model_validator(mode="after")
    def _adds_up(self) -> ReservationCaptured:
        _check_split(self.allocations, self.amount, "ReservationCaptured")
        _check_split(self.released_allocations, self.released, "ReservationCaptured released")
        if not self.final and self.released:
            raise ValueError("ReservationCaptured: only the final part releases the rest")
        return self


@event("ledger.CaptureRejected")
class CaptureRejected(LedgerEvent):
    """A capture payments asked for was refused (nothing moved): ``reason`` says why, so
    that the claim waiting for it stops and an operator resolves it."""

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID | None = None
    capture_id: uuid.UUID | None = None
    amount: Money
    reason: CaptureRefusal


@event("ledger.ReservationReleased")
class ReservationReleased(LedgerEvent):
    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    amount: Money
    allocations: tuple[LotAmount, ...]
    reason: ReleaseReason

    @model_validator(mode="after")
    def _adds_up(self) -> ReservationReleased:
        _check_split(self.allocations, self.amount, "ReservationReleased")
        return self


@event("ledger.LotExpired")
class LotExpired(LedgerEvent):
    lot_id: uuid.UUID
    amount: Money


@event("ledger.EntryReversed", version=2)
class EntryReversed(LedgerEvent):
    """A compensating entry. ``target_version`` is the stream version of the reversed event.

    Reversing a grant removes ``amount`` from its lot (``lot_id``); reversing a capture gives
    ``allocations`` back to the lots the capture was taken from (``reservation_id``).
    """

    target_event: ReversibleEvent
    target_version: int = Field(ge=1)
    lot_id: uuid.UUID | None = None
    reservation_id: uuid.UUID | None = None
    amount: Money
    allocations: tuple[LotAmount, ...]
    reason_code: ReversalReasonCode
    actor: Actor = Field(min_length=1)

    @model_validator(mode="after")
    def _names_its_target(self) -> EntryReversed:
        _check_split(self.allocations, self.amount, "EntryReversed")
        if self.target_event == "ledger.CreditsGranted":
            if self.lot_id is None or self.reservation_id is not None:
                raise ValueError("reversing a grant names its lot_id (and no reservation_id)")
            if [a.lot_id for a in self.allocations] != [self.lot_id]:
                raise ValueError("reversing a grant takes from that grant's lot only")
        elif self.reservation_id is None or self.lot_id is not None:
            raise ValueError("reversing a capture names its reservation_id (and no lot_id)")
        return self


@event("ledger.WalletSuspended", version=2)
class WalletSuspended(LedgerEvent):
    reason_code: StatusReasonCode


@event("ledger.WalletReinstated", version=2)
class WalletReinstated(LedgerEvent):
    reason_code: StatusReasonCode


@event("ledger.WalletClosed", version=2)
class WalletClosed(LedgerEvent):
    reason_code: StatusReasonCode


__all__ = [
    "CaptureRefusal",
    "CaptureRejected",
    "CourseRef",
    "CreditsGranted",
    "CreditsReserved",
    "Earmark",
    "EmploymentStatus",
    "EntryReversed",
    "GrantKind",
    "GrantReasonCode",
    "LedgerEvent",
    "LotAmount",
    "LotExpired",
    "Money",
    "MoneyOrZero",
    "NeedTier",
    "ProfileNoted",
    "RejectionReason",
    "ReleaseReason",
    "ReservationCaptured",
    "ReservationRejected",
    "ReservationReleased",
    "ReversalReasonCode",
    "ReversibleEvent",
    "StatusReasonCode",
    "UtcDatetime",
    "WalletClosed",
    "WalletOpened",
    "WalletProfile",
    "WalletReinstated",
    "WalletSuspended",
]


@event("ledger.ApprovalRequested")
class LedgerApprovalRequested(ApprovalRequested):
    """A policy, an allocation run or a reversal was proposed; it waits for a second person."""


@event("ledger.ApprovalDecided")
class LedgerApprovalDecided(ApprovalDecided):
    """A second person approved (and so carried out) or refused a ledger proposal."""


# A funder's budget is a ledger stream too; its events are registered with the ledger's.
import shared.events.budgets  # noqa: E402

# the upcasters of version 1 register with the event types above
import shared.events.ledger_upcasters  # noqa: E402,F401
