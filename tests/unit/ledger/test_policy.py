"""The yearly entitlement: amounts by need, the accumulation cap, once per year."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.ledger.commands import CaptureReservation
from services.ledger.domain import (
    EntitlementPolicy,
    allocate_entitlement,
    entitlement_for,
    statutory_held,
)
from shared.events.ledger import CreditsGranted, WalletClosed, WalletProfile, WalletSuspended
from tests.unit.support.ledger import ACCOUNT, T0, day, given, granted, opened, reserved, then, uid

POLICY = EntitlementPolicy(year=2025)
QUALIFIED = WalletProfile(qualification_level=5, employment_status="employed")
LOW_QUALIFIED = WalletProfile(qualification_level=3, employment_status="employed")


def statutory(
    lot: str, amount: int, year: int, expires_at: datetime | None = None
) -> CreditsGranted:
    return granted(
        lot, amount, kind="statutory", year=year, funder_id="state", expires_at=expires_at
    )


class TestAmountsByNeed:
    def test_cpf_like_defaults_in_minor_units(self) -> None:
        assert (POLICY.base_amount, POLICY.cap) == (50_000, 500_000)
        assert (POLICY.enhanced_amount, POLICY.enhanced_cap) == (80_000, 800_000)

    def test_a_qualified_worker_earns_the_base_amount(self) -> None:
        assert entitlement_for(POLICY, QUALIFIED, given(opened())) == 50_000

    def test_eqf_three_or_below_is_low_qualified(self) -> None:
        assert entitlement_for(POLICY, LOW_QUALIFIED, given(opened())) == 80_000
        level_4 = WalletProfile(qualification_level=4, employment_status="employed")
        assert entitlement_for(POLICY, level_4, given(opened())) == 50_000

    def test_the_high_need_tier_earns_the_enhanced_amount(self) -> None:
        high = QUALIFIED.model_copy(update={"need_tier": "high"})
        assert entitlement_for(POLICY, high, given(opened())) == 80_000
        priority = QUALIFIED.model_copy(update={"need_tier": "priority"})
        assert entitlement_for(POLICY, priority, given(opened())) == 50_000

    def test_supplements_add_per_need(self) -> None:
        policy = EntitlementPolicy(year=2025, supplements={"unemployed": 20_000, "priority": 5_000})
        unemployed_priority = WalletProfile(
            qualification_level=6, employment_status="unemployed", need_tier="priority"
        )
        assert entitlement_for(policy, unemployed_priority, given(opened())) == 75_000
        assert entitlement_for(policy, QUALIFIED, given(opened())) == 50_000

    def test_a_policy_names_only_needs_it_can_see(self) -> None:
        # need flags never reach the ledger: a policy naming one would silently favour nobody
        with pytest.raises(ValidationError):
            EntitlementPolicy(year=2025, supplements={"disability": 5_000})
        with pytest.raises(ValidationError):
            EntitlementPolicy(year=2025, enhanced_needs=("disability",))

    def test_an_unknown_profile_earns_the_base_amount(self) -> None:
        assert entitlement_for(POLICY, None, given(opened())) == 50_000


class TestCap:
    def test_the_grant_tops_the_holding_up_to_the_cap(self) -> None:
        state = given(opened(), statutory("old", 480_000, 2024))
        assert entitlement_for(POLICY, QUALIFIED, state) == 20_000

    def test_nothing_at_the_cap(self) -> None:
        state = given(opened(), statutory("old", 500_000, 2024))
        assert entitlement_for(POLICY, QUALIFIED, state) == 0
        assert allocate_entitlement(state, POLICY, lot_id=uid("y2025"), now=T0) == []

    def test_the_low_qualified_cap_is_higher(self) -> None:
        state = given(opened(), statutory("old", 500_000, 2024))
        assert entitlement_for(POLICY, LOW_QUALIFIED, state) == 80_000
        state = given(opened(), statutory("old", 750_000, 2024))
        assert entitlement_for(POLICY, LOW_QUALIFIED, state) == 50_000

    def test_top_ups_do_not_count_against_the_cap(self) -> None:
        state = given(opened(), statutory("old", 450_000, 2024), granted("region", 900_000))
        assert statutory_held(state) == 450_000
        assert entitlement_for(POLICY, QUALIFIED, state) == 50_000

    def test_reserved_statutory_credit_still_counts_spent_credit_does_not(self) -> None:
        state = given(
            opened(),
            statutory("old", 500_000, 2024),
            reserved("r1", [("old", 100_000)]),
        )
        assert entitlement_for(POLICY, QUALIFIED, state) == 0
        state = then(
            state, CaptureReservation(account_id=ACCOUNT, reservation_id=uid("r1"), amount=100_000)
        )
        assert entitlement_for(POLICY, QUALIFIED, state) == 50_000

    def test_lots_past_their_expiry_do_not_count(self) -> None:
        state = given(opened(), statutory("old", 500_000, 2024, expires_at=day(10)))
        assert entitlement_for(POLICY, QUALIFIED, state, now=day(9)) == 0
        assert entitlement_for(POLICY, QUALIFIED, state, now=day(10)) == 50_000


class TestAllocation:
    def test_grants_the_statutory_lot_for_the_year(self) -> None:
        policy = EntitlementPolicy(year=2025, lot_lifetime_years=3)
        state = given(opened(profile=LOW_QUALIFIED))
        allocation = uid("allocation-2025")
        [event] = allocate_entitlement(
            state, policy, lot_id=uid("y2025"), now=T0, allocation_id=allocation
        )
        assert event == CreditsGranted(
            account_id=ACCOUNT,
            occurred_at=T0,
            lot_id=uid("y2025"),
            amount=80_000,
            funder_id="state",
            reason_code="statutory",
            kind="statutory",
            year=2025,
            expires_at=datetime(2028, 1, 1, tzinfo=UTC),
            earmark=None,
            allocation_id=allocation,
        )

    def test_once_per_year_however_often_it_runs(self) -> None:
        state = given(opened(profile=QUALIFIED))
        events = allocate_entitlement(state, POLICY, lot_id=uid("first"), now=T0)
        state = given(opened(profile=QUALIFIED), *events)
        assert allocate_entitlement(state, POLICY, lot_id=uid("first"), now=T0) == []
        assert allocate_entitlement(state, POLICY, lot_id=uid("second"), now=day(1)) == []
        assert entitlement_for(POLICY, QUALIFIED, state) == 0
        next_year = EntitlementPolicy(year=2026)
        assert len(allocate_entitlement(state, next_year, lot_id=uid("y2026"), now=T0)) == 1

    def test_a_closed_or_absent_wallet_earns_nothing(self) -> None:
        closed = given(
            opened(), WalletClosed(account_id=ACCOUNT, occurred_at=T0, reason_code="other")
        )
        assert entitlement_for(POLICY, QUALIFIED, closed) == 0
        assert allocate_entitlement(closed, POLICY, lot_id=uid("y"), now=T0) == []
        assert entitlement_for(POLICY, QUALIFIED, given()) == 0
        assert allocate_entitlement(given(), POLICY, lot_id=uid("y"), now=T0) == []

    def test_a_suspended_wallet_still_earns(self) -> None:
        state = given(
            opened(profile=QUALIFIED),
            WalletSuspended(account_id=ACCOUNT, occurred_at=T0, reason_code="other"),
        )
        assert len(allocate_entitlement(state, POLICY, lot_id=uid("y"), now=T0)) == 1

    def test_a_lot_that_would_be_born_expired_is_not_granted(self) -> None:
        late = EntitlementPolicy(year=2020, lot_lifetime_years=2)  # expires 2022-01-01
        assert allocate_entitlement(given(opened()), late, lot_id=uid("y"), now=T0) == []
