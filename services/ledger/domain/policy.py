"""The entitlement policy of a year and the statutory grant it gives one wallet.

Modelled on France's CPF: every account earns ``base_amount`` a year up to an accumulation
``cap``; an account with a need the policy favours (by default: low qualification, i.e. EQF
level at most ``low_qualification_max_eqf``, or the ``high`` need tier) earns
``enhanced_amount`` up to ``enhanced_cap``; ``supplements`` add an amount per need on top
(e.g. for the unemployed). A need is one of :data:`NEED_CODES`: ``low_qualification``, an
employment status or a need tier (the accounts service computes the tier from the person's
need flags, which never reach the ledger). The cap applies to statutory credit only: top-ups
never count against it and are never limited by it.

What counts against the cap is the statutory credit the wallet *holds*: the ``remaining`` of
its statutory lots, reserved part included (reserved credit is still the learner's until it
is captured, and counting it means a later release can never push the holding above the
cap), minus lots already past their expiry at ``now`` (they are about to expire).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from services.ledger.commands import GrantCredits
from shared.events.ledger import LedgerEvent, WalletProfile

from .decide import decide_folded
from .state import WalletState

LOW_QUALIFICATION: Final = "low_qualification"
"""The need a profile has when its EQF level is at most the policy's threshold."""

MAX_POLICY_AMOUNT = 100_000_000
"""The largest yearly amount, cap or supplement a policy may set, in minor units: 1,000,000.00
of the currency (EUR). Far above any real entitlement (France's CPF caps at 5,000 EUR), low
enough that no sum of them can overflow a 64-bit column, so a typo or a malicious policy is
refused with a 422 instead of creating credit or breaking an allocation run."""
MAX_SUPPLEMENTS = 20
"""At most this many needs with a supplement (and as many enhanced needs)."""

PolicyAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_POLICY_AMOUNT)]
"""A non-negative amount in minor units, at most :data:`MAX_POLICY_AMOUNT`."""
NeedCode = Literal[
    "low_qualification",
    "employed",
    "unemployed",
    "self_employed",
    "inactive",
    "standard",
    "priority",
    "high",
]
"""What a policy may favour: low qualification, an employment status or a need tier."""
NEED_CODES: tuple[str, ...] = get_args(NeedCode)


class PolicyTerms(BaseModel):
    """What a policy sets for its year (the body of ``PUT /v1/ledger/policies/{year}``).

    Amounts are in minor units (defaults: EUR cents); every amount, cap and supplement is
    at most :data:`MAX_POLICY_AMOUNT` (1,000,000.00 EUR)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_amount: PolicyAmount = 50_000
    cap: PolicyAmount = 500_000
    low_qualification_max_eqf: int = Field(default=3, ge=0, le=8)
    enhanced_needs: tuple[NeedCode, ...] = Field(
        default=(LOW_QUALIFICATION, "high"), max_length=MAX_SUPPLEMENTS
    )
    enhanced_amount: PolicyAmount = 80_000
    enhanced_cap: PolicyAmount = 800_000
    supplements: dict[NeedCode, PolicyAmount] = Field(
        default_factory=dict,
        max_length=MAX_SUPPLEMENTS,
        description="extra yearly amount per need (low_qualification, an employment status or "
        "a need tier)",
    )
    lot_lifetime_years: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="a lot for year Y expires on 1 January of Y + lifetime (None: never)",
    )
    funder_id: str = Field(
        default="state", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$"
    )


class EntitlementPolicy(PolicyTerms):
    """The statutory entitlement for one year: its terms and the year they apply to."""

    year: int = Field(ge=2000, le=2200)

    def lot_expiry(self) -> datetime | None:
        if self.lot_lifetime_years is None:
            return None
        return datetime(self.year + self.lot_lifetime_years, 1, 1, tzinfo=UTC)


def needs_of(policy: EntitlementPolicy, profile: WalletProfile | None) -> frozenset[str]:
    """The needs a policy can modulate on: low qualification, employment status, need tier."""
    if profile is None:
        return frozenset()
    needs: set[str] = {profile.employment_status, profile.need_tier}
    if profile.qualification_level <= policy.low_qualification_max_eqf:
        needs.add(LOW_QUALIFICATION)
    return frozenset(needs)


def yearly_amount(policy: EntitlementPolicy, profile: WalletProfile | None) -> tuple[int, int]:
    """The uncapped yearly amount for ``profile`` and the cap that applies to it."""
    needs = needs_of(policy, profile)
    enhanced = bool(needs & set(policy.enhanced_needs))
    amount = policy.enhanced_amount if enhanced else policy.base_amount
    amount += sum(extra for need, extra in policy.supplements.items() if need in needs)
    return amount, policy.enhanced_cap if enhanced else policy.cap


def statutory_held(state: WalletState, now: datetime | None = None) -> int:
    """The statutory credit counting against the cap (see the module doc)."""
    return sum(
        lot.remaining
        for lot in state.lots.values()
        if lot.kind == "statutory" and not (now is not None and lot.is_due(now))
    )


def entitlement_for(
    policy: EntitlementPolicy,
    profile: WalletProfile | None,
    state: WalletState,
    *,
    now: datetime | None = None,
) -> int:
    """The statutory grant ``state`` should receive for ``policy.year``: 0 when the year was
    already granted, the wallet is absent or closed, or the holding is at the cap.

    A suspended wallet still earns its entitlement: suspension pauses spending, not rights.
    """
    if state.status in ("absent", "closed") or policy.year in state.years_granted:
        return 0
    amount, cap = yearly_amount(policy, profile)
    return max(0, min(amount, cap - statutory_held(state, now)))


def allocate_entitlement(
    state: WalletState,
    policy: EntitlementPolicy,
    *,
    lot_id: uuid.UUID,
    now: datetime,
    allocation_id: uuid.UUID | None = None,
) -> list[LedgerEvent]:
    """The yearly allocation for one wallet: a statutory ``CreditsGranted`` for
    ``policy.year`` sized by ``entitlement_for`` with the wallet's noted profile, or ``[]``
    (nothing due, already granted, or a lot that would already be expired at ``now``).
    Running it again for the same year always decides ``[]``."""
    return allocate_folded(state, policy, lot_id=lot_id, now=now, allocation_id=allocation_id)[0]


def allocate_folded(
    state: WalletState,
    policy: EntitlementPolicy,
    *,
    lot_id: uuid.UUID,
    now: datetime,
    allocation_id: uuid.UUID | None = None,
) -> tuple[list[LedgerEvent], WalletState]:
    """:func:`allocate_entitlement`, and the wallet after it, its invariants checked (the
    allocation run folds each wallet once)."""
    if state.account_id is None:
        return [], state
    amount = entitlement_for(policy, state.profile, state, now=now)
    expires_at = policy.lot_expiry()
    if amount == 0 or (expires_at is not None and expires_at <= now):
        return [], state
    return decide_folded(
        state,
        GrantCredits(
            account_id=state.account_id,
            lot_id=lot_id,
            amount=amount,
            funder_id=policy.funder_id,
            reason_code="statutory",
            kind="statutory",
            year=policy.year,
            expires_at=expires_at,
            allocation_id=allocation_id,
        ),
        now,
    )


__all__ = [
    "LOW_QUALIFICATION",
    "MAX_POLICY_AMOUNT",
    "NEED_CODES",
    "EntitlementPolicy",
    "PolicyTerms",
    "allocate_entitlement",
    "allocate_folded",
    "entitlement_for",
    "needs_of",
    "statutory_held",
    "yearly_amount",
]
