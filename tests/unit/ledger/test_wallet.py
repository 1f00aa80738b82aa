"""A wallet's life: opened from the accounts service, grants, suspension and closing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ledger.commands import (
    CloseWallet,
    GrantCredits,
    NoteProfile,
    OpenWallet,
    ReinstateWallet,
    SuspendWallet,
    command_for_event,
)
from services.ledger.domain import (
    ExpiryInPast,
    IdConflict,
    InvariantViolation,
    WalletIsClosed,
    WalletNotFound,
    decide,
)
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountTransferred,
    NeedProfile,
)
from shared.events.ledger import (
    CreditsGranted,
    Earmark,
    ProfileNoted,
    WalletClosed,
    WalletOpened,
    WalletProfile,
    WalletReinstated,
    WalletSuspended,
)
from tests.unit.support.ledger import (
    ACCOUNT,
    PROFILE,
    T0,
    day,
    given,
    granted,
    opened,
    then,
    uid,
    when,
)


def grant(lot: str = "a", amount: int = 10_000, **terms: object) -> GrantCredits:
    return GrantCredits(
        account_id=ACCOUNT,
        lot_id=uid(lot),
        amount=amount,
        funder_id="region-idf",
        reason_code="top_up",
        **terms,
    )


class TestOpening:
    def test_opens_the_wallet_and_notes_the_profile(self) -> None:
        assert when(given(), OpenWallet(account_id=ACCOUNT, profile=PROFILE)) == [
            WalletOpened(account_id=ACCOUNT, occurred_at=T0),
            ProfileNoted(account_id=ACCOUNT, occurred_at=T0, profile=PROFILE),
        ]

    def test_an_opening_delivered_twice_opens_once(self) -> None:
        assert when(given(opened()), OpenWallet(account_id=ACCOUNT, profile=PROFILE)) == []

    def test_a_profile_update_is_noted_unless_nothing_changed(self) -> None:
        state = given(opened(profile=PROFILE))
        assert when(state, NoteProfile(account_id=ACCOUNT, profile=PROFILE)) == []
        unemployed = WalletProfile(qualification_level=5, employment_status="unemployed")
        assert then(state, NoteProfile(account_id=ACCOUNT, profile=unemployed)).profile == (
            unemployed
        )

    def test_no_profile_without_a_wallet(self) -> None:
        with pytest.raises(WalletNotFound) as err:
            when(given(), NoteProfile(account_id=ACCOUNT, profile=PROFILE))
        assert (err.value.code, err.value.kind) == ("wallet_not_found", "not_found")

    def test_accounts_events_map_to_wallet_commands(self) -> None:
        need = NeedProfile(qualification_level=3, employment_status="unemployed", need_tier="high")
        opened_event = AccountOpened(
            account_id=ACCOUNT, agency_id="pes-75", profile=need, opened_at=T0
        )
        assert command_for_event(opened_event) == OpenWallet(
            account_id=ACCOUNT,
            profile=WalletProfile(
                qualification_level=3, employment_status="unemployed", need_tier="high"
            ),
        )
        assert command_for_event(
            AccountClosed(account_id=ACCOUNT, reason_code="deceased")
        ) == CloseWallet(account_id=ACCOUNT, reason_code="deceased")
        transferred = AccountTransferred(account_id=ACCOUNT, from_agency_id="a", to_agency_id="b")
        assert command_for_event(transferred) is None


class TestGrants:
    def test_a_grant_creates_a_lot(self) -> None:
        earmark = Earmark(tags=("green",))
        command = grant(expires_at=day(365), earmark=earmark)
        assert when(given(opened()), command) == [
            granted("a", 10_000, expires_at=day(365), earmark=earmark)
        ]
        lot = then(given(opened()), command).lots[uid("a")]
        assert (lot.remaining, lot.funder_id, lot.granted_version) == (10_000, "region-idf", 2)

    def test_a_grant_delivered_twice_is_applied_once(self) -> None:
        state = then(given(opened()), grant())
        assert when(state, grant()) == []
        assert state.available == 10_000

    def test_a_lot_id_reused_for_other_terms_is_a_conflict(self) -> None:
        state = then(given(opened()), grant())
        with pytest.raises(IdConflict):
            when(state, grant(amount=20_000))

    def test_a_lot_that_would_already_be_expired_is_refused(self) -> None:
        with pytest.raises(ExpiryInPast):
            when(given(opened()), grant(expires_at=T0))

    def test_no_grant_without_a_wallet(self) -> None:
        with pytest.raises(WalletNotFound):
            when(given(), grant())

    def test_no_grant_to_a_closed_wallet(self) -> None:
        state = given(
            opened(), WalletClosed(account_id=ACCOUNT, occurred_at=T0, reason_code="other")
        )
        with pytest.raises(WalletIsClosed) as err:
            when(state, grant())
        assert err.value.code == "wallet_closed"

    def test_a_grant_redelivered_after_closing_is_still_just_a_duplicate(self) -> None:
        state = then(given(opened()), grant())
        state = then(state, CloseWallet(account_id=ACCOUNT, reason_code="other"))
        assert when(state, grant()) == []

    def test_a_suspended_wallet_still_receives_grants(self) -> None:
        state = given(
            opened(), WalletSuspended(account_id=ACCOUNT, occurred_at=T0, reason_code="other")
        )
        assert [type(e) for e in when(state, grant())] == [CreditsGranted]

    def test_one_statutory_grant_per_year(self) -> None:
        state = then(given(opened()), grant("y1", kind="statutory", year=2025))
        assert when(state, grant("y2", kind="statutory", year=2025)) == []
        assert [type(e) for e in when(state, grant("y3", kind="statutory", year=2026))] == [
            CreditsGranted
        ]


class TestStatus:
    def test_suspend_reinstate_close(self) -> None:
        state = given(opened())
        assert when(state, SuspendWallet(account_id=ACCOUNT, reason_code="eligibility_review")) == [
            WalletSuspended(account_id=ACCOUNT, occurred_at=T0, reason_code="eligibility_review")
        ]
        state = then(state, SuspendWallet(account_id=ACCOUNT, reason_code="eligibility_review"))
        assert state.status == "suspended"
        assert when(state, SuspendWallet(account_id=ACCOUNT, reason_code="other")) == []
        assert when(state, ReinstateWallet(account_id=ACCOUNT, reason_code="fraud_cleared")) == [
            WalletReinstated(account_id=ACCOUNT, occurred_at=T0, reason_code="fraud_cleared")
        ]
        state = then(state, CloseWallet(account_id=ACCOUNT, reason_code="end_of_eligibility"))
        assert state.status == "closed"

    def test_closed_is_final(self) -> None:
        state = given(
            opened(), WalletClosed(account_id=ACCOUNT, occurred_at=T0, reason_code="other")
        )
        for command in (
            SuspendWallet(account_id=ACCOUNT),
            ReinstateWallet(account_id=ACCOUNT),
            CloseWallet(account_id=ACCOUNT),
            OpenWallet(account_id=ACCOUNT),
        ):
            assert when(state, command) == []

    def test_reinstating_an_open_wallet_changes_nothing(self) -> None:
        assert when(given(opened()), ReinstateWallet(account_id=ACCOUNT)) == []

    def test_no_status_change_without_a_wallet(self) -> None:
        with pytest.raises(WalletNotFound):
            when(given(), SuspendWallet(account_id=ACCOUNT))


class TestGuards:
    def test_a_command_for_another_account_is_refused(self) -> None:
        with pytest.raises(InvariantViolation):
            decide(given(opened()), SuspendWallet(account_id=uid("someone-else")), T0)

    def test_the_clock_must_be_timezone_aware(self) -> None:
        with pytest.raises(ValueError):
            decide(given(opened()), SuspendWallet(account_id=ACCOUNT), T0.replace(tzinfo=None))

    def test_decisions_are_stamped_in_utc(self) -> None:
        from datetime import timezone

        paris = T0.astimezone(timezone(timedelta(hours=1)))
        [event] = decide(given(opened()), SuspendWallet(account_id=ACCOUNT), paris)
        assert event.occurred_at == T0
        assert event.occurred_at.utcoffset() == timedelta(0)
