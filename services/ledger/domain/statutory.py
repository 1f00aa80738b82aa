"""The yearly allocation's grant to one wallet, decided and folded in one step.

:func:`statutory_grant` is :func:`.policy.allocate_folded` (``entitlement_for``, then
``decide`` of a statutory ``GrantCredits``, ``evolve`` of its ``CreditsGranted`` and
``assert_invariants`` on the state after) computed straight from the wallet's state: no
command or event model is built, and the state is copied once. The same rules hold, in
the same order, with the same errors:

- nothing for a wallet that has no account yet, is absent or closed, was already granted
  the policy's year (a reversed grant still counts), holds its cap of statutory credit
  (lots past their expiry at ``now`` not counted), or whose lot would already be expired;
- a lot of the same id already in the wallet: nothing if it was granted with the same
  terms, ``IdConflict`` otherwise;
- the state after (one more version, the new lot, the year granted, the total) passes
  ``assert_invariants`` before anything is returned, so the balance can never go negative.

The unit test ``tests/unit/ledger/test_statutory_grant.py`` runs both over generated
wallets and asserts they agree on the events, the state after and the errors.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.events.ledger import CreditsGranted, WalletProfile

from .errors import IdConflict
from .invariants import assert_invariants
from .policy import EntitlementPolicy, yearly_amount
from .state import Lot, WalletState, replace


class StatutoryTerms:
    """What a policy grants, worked out once for a run: the lot's expiry, the amount and
    cap per profile (remembered by the fields :func:`.policy.needs_of` reads)."""

    __slots__ = ("_amounts", "expires_at", "funder_id", "policy", "year")

    def __init__(self, policy: EntitlementPolicy) -> None:
        self.policy = policy
        self.year = policy.year
        self.funder_id = policy.funder_id
        self.expires_at = policy.lot_expiry()
        self._amounts: dict[tuple[int, str, str] | None, tuple[int, int]] = {
            None: yearly_amount(policy, None)
        }

    def yearly(self, profile: WalletProfile | None) -> tuple[int, int]:
        """:func:`.policy.yearly_amount` of ``profile`` (amount, cap)."""
        key = (
            None
            if profile is None
            else (profile.qualification_level, profile.employment_status, profile.need_tier)
        )
        known = self._amounts.get(key)
        if known is None:
            known = self._amounts[key] = yearly_amount(self.policy, profile)
        return known


def statutory_grant(
    state: WalletState,
    terms: StatutoryTerms,
    *,
    lot_id: uuid.UUID,
    now: datetime,
    allocation_id: uuid.UUID | None = None,
) -> tuple[int, WalletState] | None:
    """The amount granted and the wallet after it, or None when nothing is granted (see
    the module doc); raises what ``allocate_folded`` raises."""
    if state.account_id is None:
        return None
    # entitlement_for
    year = terms.year
    if state.status in ("absent", "closed") or year in state.years_granted:
        return None
    amount, cap = terms.yearly(state.profile)
    held = 0
    for lot in state.lots.values():
        if lot.kind == "statutory" and not (lot.expires_at is not None and lot.expires_at <= now):
            held += lot.remaining
    amount = max(0, min(amount, cap - held))
    expires_at = terms.expires_at
    if amount == 0 or (expires_at is not None and expires_at <= now):
        return None
    # decide_folded, then grant
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    known = state.lots.get(lot_id)
    if known is not None:
        same = (
            known.amount == amount
            and known.funder_id == terms.funder_id
            and known.kind == "statutory"
            and known.year == year
            and known.expires_at == expires_at
            and known.earmark is None
        )
        if not same:
            raise IdConflict(f"lot {lot_id} was granted with other terms")
        return None
    if type(amount) is not int:  # a strict integer, as the command's model requires
        raise ValueError(f"lot {lot_id}: a grant of {amount!r}")
    # evolve of the CreditsGranted (its lot is new: checked above)
    version = state.version + 1
    lot = Lot(
        lot_id=lot_id,
        amount=amount,
        funder_id=terms.funder_id,
        reason_code="statutory",
        kind="statutory",
        year=year,
        expires_at=expires_at,
        earmark=None,
        allocation_id=allocation_id,
        granted_at=now,
        granted_version=version,
        remaining=amount,
    )
    after = replace(
        state,
        version=version,
        lots={**state.lots, lot_id: lot},
        years_granted=state.years_granted | {year},
        granted_total=state.granted_total + amount,
    )
    assert_invariants(after)
    return amount, after


def statutory_event(
    account_id: uuid.UUID,
    amount: int,
    terms: StatutoryTerms,
    *,
    lot_id: uuid.UUID,
    now: datetime,
    allocation_id: uuid.UUID | None = None,
) -> CreditsGranted:
    """The ``CreditsGranted`` that :func:`statutory_grant` folded (the allocation writes
    its rows without building it: ``services.ledger.handlers.bulk``)."""
    return CreditsGranted(
        account_id=account_id,
        occurred_at=now.astimezone(UTC),
        lot_id=lot_id,
        amount=amount,
        funder_id=terms.funder_id,
        reason_code="statutory",
        kind="statutory",
        year=terms.year,
        expires_at=terms.expires_at,
        allocation_id=allocation_id,
    )


__all__ = ["StatutoryTerms", "statutory_event", "statutory_grant"]
