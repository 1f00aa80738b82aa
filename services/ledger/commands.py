"""What callers may ask of an account's wallet: the commands ``domain.decide`` accepts.

Every command names its account (the stream it acts on) and carries the ids the caller
chose (lot, reservation, enrolment), so a command delivered twice is recognised and applied
once. Commands are validated here for shape only; the rules that depend on the wallet's
state live in ``services.ledger.domain``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    NeedProfile,
    StatusReasonCode,
)
from shared.events.base import Event
from shared.events.ledger import (
    CourseRef,
    Earmark,
    GrantKind,
    GrantReasonCode,
    Money,
    ReversalReasonCode,
    UtcDatetime,
    WalletProfile,
)
from shared.events.payments import CaptureRequested, EnrolmentRequested, ReleaseRequested


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: uuid.UUID


class OpenWallet(_Command):
    """Open the wallet of a newly opened account (from ``accounts.AccountOpened``)."""

    profile: WalletProfile | None = None


class NoteProfile(_Command):
    """Keep the need profile the entitlement policy will read (``AccountProfileUpdated``)."""

    profile: WalletProfile


class GrantCredits(_Command):
    """Create a lot: a top-up by a funder, or a statutory grant for ``year``.

    Statutory grants normally come from ``domain.allocate_entitlement``, which applies the
    policy's cap; this command only guarantees one statutory grant per wallet and year.
    """

    lot_id: uuid.UUID
    amount: Money
    funder_id: str = Field(min_length=1)
    reason_code: GrantReasonCode = "top_up"
    kind: GrantKind = "top_up"
    year: int | None = None
    expires_at: UtcDatetime | None = None
    earmark: Earmark | None = None
    allocation_id: uuid.UUID | None = None
    from_budget: bool = False
    """A funder's own top-up: drawn from ``funder_id``'s budget of ``year`` in the same
    transaction (refused past what is left, see ``domain.budgets``)."""

    @model_validator(mode="after")
    def _statutory_has_year(self) -> GrantCredits:
        if self.kind == "statutory" and self.year is None:
            raise ValueError("a statutory grant needs its year")
        if self.from_budget and (self.kind != "top_up" or self.year is None):
            raise ValueError("a grant from a budget is a top-up and names the budget's year")
        return self


class ReserveCredits(_Command):
    """Hold credit for an enrolment (payments' ``EnrolmentRequested``).

    With ``up_to`` the learner has accepted to pay what the credit does not cover, so the
    reservation takes whatever is usable (at most ``amount``) instead of being rejected.
    ``expires_at`` defaults to ``domain.DEFAULT_RESERVATION_LIFETIME`` after the decision.
    """

    reservation_id: uuid.UUID
    enrolment_id: uuid.UUID
    amount: Money
    course: CourseRef
    up_to: bool = False
    expires_at: UtcDatetime | None = None


class CaptureReservation(_Command):
    """Spend ``amount`` (at most what the reservation still holds) of a reservation.

    ``capture_id`` names the part (payments: the claim), so a part asked twice is captured
    once; a ``final`` part releases the rest, any other leaves it reserved for a later part.
    """

    reservation_id: uuid.UUID
    amount: Money
    capture_id: uuid.UUID | None = None
    final: bool = True
    provider_id: str | None = None
    """Whom the part pays (payments knows it; the funders' statements name it)."""


class ReleaseReservation(_Command):
    """Give a reservation's whole amount back to its lots (enrolment refused or cancelled)."""

    reservation_id: uuid.UUID
    reason: Literal["released", "cancelled"] = "released"


class ExpireReservations(_Command):
    """Release every active reservation whose ``expires_at`` is at or before the clock."""


class ExpireLots(_Command):
    """Expire the free part of every lot whose ``expires_at`` is at or before the clock."""


class GrantTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["grant"] = "grant"
    lot_id: uuid.UUID


class CaptureTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["capture"] = "capture"
    reservation_id: uuid.UUID


ReversalTarget = Annotated[GrantTarget | CaptureTarget, Field(discriminator="kind")]


class ReverseEntry(_Command):
    """Compensate a grant (by its lot) or a capture (by its reservation), with a reason code."""

    target: ReversalTarget
    reason_code: ReversalReasonCode
    actor: str = Field(min_length=1)


class SuspendWallet(_Command):
    reason_code: StatusReasonCode = "other"


class ReinstateWallet(_Command):
    reason_code: StatusReasonCode = "other"


class CloseWallet(_Command):
    reason_code: StatusReasonCode = "other"


Command = (
    OpenWallet
    | NoteProfile
    | GrantCredits
    | ReserveCredits
    | CaptureReservation
    | ReleaseReservation
    | ExpireReservations
    | ExpireLots
    | ReverseEntry
    | SuspendWallet
    | ReinstateWallet
    | CloseWallet
)


def wallet_profile(profile: NeedProfile) -> WalletProfile:
    """The ledger's copy of an accounts need profile."""
    return WalletProfile(
        qualification_level=profile.qualification_level,
        employment_status=profile.employment_status,
        need_tier=profile.need_tier,
        employer_id=profile.employer_id,
    )


CommandEvent = (
    AccountOpened
    | AccountProfileUpdated
    | AccountSuspended
    | AccountReinstated
    | AccountClosed
    | EnrolmentRequested
    | CaptureRequested
    | ReleaseRequested
)
"""The events of other services that call for a wallet command (:func:`command_for_event`)."""


def command_for_event(event: Event) -> Command | None:
    """The wallet command an event of another service (accounts: the wallet's lifecycle and
    need profile; payments: reserve, capture, release) calls for, or None when the ledger
    ignores it."""
    match event:
        case AccountOpened():
            return OpenWallet(account_id=event.account_id, profile=wallet_profile(event.profile))
        case AccountProfileUpdated():
            return NoteProfile(account_id=event.account_id, profile=wallet_profile(event.profile))
        case AccountSuspended():
            return SuspendWallet(account_id=event.account_id, reason_code=event.reason_code)
        case AccountReinstated():
            return ReinstateWallet(account_id=event.account_id, reason_code=event.reason_code)
        case AccountClosed():
            return CloseWallet(account_id=event.account_id, reason_code=event.reason_code)
        case EnrolmentRequested():
            return ReserveCredits(
                account_id=event.account_id,
                reservation_id=event.reservation_id,
                enrolment_id=event.enrolment_id,
                amount=event.amount,
                course=event.course,
                up_to=event.up_to,
                expires_at=event.expires_at,
            )
        case CaptureRequested():
            return CaptureReservation(
                account_id=event.account_id,
                reservation_id=event.reservation_id,
                amount=event.amount,
                capture_id=event.claim_id,
                final=event.final,
                provider_id=event.provider_id,
            )
        case ReleaseRequested():
            return ReleaseReservation(
                account_id=event.account_id, reservation_id=event.reservation_id, reason="cancelled"
            )
        case _:
            return None


__all__ = [
    "CaptureReservation",
    "CaptureTarget",
    "CloseWallet",
    "Command",
    "CommandEvent",
    "ExpireLots",
    "ExpireReservations",
    "GrantCredits",
    "GrantTarget",
    "NoteProfile",
    "OpenWallet",
    "ReinstateWallet",
    "ReleaseReservation",
    "ReserveCredits",
    "ReversalTarget",
    "ReverseEntry",
    "SuspendWallet",
    "command_for_event",
    "wallet_profile",
]
