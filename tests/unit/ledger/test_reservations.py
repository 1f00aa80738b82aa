"""Reserving credit: which lots, how much, and when a reservation is rejected instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ledger.commands import ReleaseReservation, ReserveCredits
from services.ledger.domain import (
    DEFAULT_RESERVATION_LIFETIME,
    ExpiryInPast,
    IdConflict,
    spendable,
)
from shared.events.ledger import (
    CourseRef,
    CreditsReserved,
    Earmark,
    ReservationRejected,
    WalletClosed,
    WalletSuspended,
)
from tests.unit.support.ledger import (
    ACCOUNT,
    COURSE,
    OTHER_COURSE,
    T0,
    day,
    given,
    granted,
    lots,
    opened,
    reserved,
    then,
    uid,
    when,
)


def reserve(
    amount: int,
    *,
    reservation: str = "r1",
    enrolment: str = "e1",
    course: CourseRef = COURSE,
    up_to: bool = False,
    expires_in: timedelta | None = timedelta(days=30),
) -> ReserveCredits:
    return ReserveCredits(
        account_id=ACCOUNT,
        reservation_id=uid(reservation),
        enrolment_id=uid(enrolment),
        amount=amount,
        course=course,
        up_to=up_to,
        expires_at=T0 + expires_in if expires_in is not None else None,
    )


def made(
    allocations: list[tuple[str, int]],
    *,
    requested: int | None = None,
    up_to: bool = False,
    course: CourseRef = COURSE,
) -> CreditsReserved:
    return reserved(
        "r1", allocations, enrolment="e1", requested=requested, up_to=up_to, course=course
    )


def rejected(reason: str, requested: int, available: int) -> ReservationRejected:
    return ReservationRejected(
        account_id=ACCOUNT,
        occurred_at=T0,
        reservation_id=uid("r1"),
        enrolment_id=uid("e1"),
        reason=reason,
        requested=requested,
        available=available,
    )


DIGITAL = Earmark(isced_fields=("06",))
HEALTH = Earmark(isced_fields=("09",))


class TestLotOrder:
    def test_a_matching_earmarked_lot_is_used_before_free_credit_that_expires_sooner(self) -> None:
        state = given(
            opened(),
            granted("free", 10_000, expires_at=day(10)),
            granted("digital", 10_000, earmark=DIGITAL, expires_at=day(300)),
        )
        assert when(state, reserve(12_000)) == [made([("digital", 10_000), ("free", 2_000)])]

    def test_an_earmarked_lot_that_does_not_match_the_course_is_never_used(self) -> None:
        state = given(
            opened(),
            granted("health", 50_000, earmark=HEALTH),
            granted("free", 5_000),
        )
        assert when(state, reserve(8_000)) == [rejected("insufficient_credit", 8_000, 5_000)]
        assert when(state, reserve(5_000)) == [made([("free", 5_000)])]

    def test_every_criterion_of_an_earmark_must_match(self) -> None:
        digital_level_5 = Earmark(isced_fields=("0613",), eqf_levels=(5,))
        digital_level_6 = Earmark(isced_fields=("0613",), eqf_levels=(6,))
        state = given(
            opened(),
            granted("level-6", 1_000, earmark=digital_level_6),
            granted("level-5", 1_000, earmark=digital_level_5),
        )
        assert when(state, reserve(1_000)) == [made([("level-5", 1_000)])]

    def test_earmarks_by_course_id_and_by_tag(self) -> None:
        state = given(
            opened(),
            granted("other", 1_000, earmark=Earmark(course_ids=(OTHER_COURSE.course_id,))),
            granted("this", 1_000, earmark=Earmark(course_ids=(COURSE.course_id,))),
            granted("tagged", 1_000, earmark=Earmark(tags=("green", "digital"))),
        )
        assert spendable(state, COURSE, T0) == 2_000
        assert spendable(state, OTHER_COURSE, T0) == 1_000

    def test_soonest_expiry_first_and_credit_that_never_expires_last(self) -> None:
        state = given(
            opened(),
            granted("never", 10_000),
            granted("late", 10_000, expires_at=day(200)),
            granted("soon", 10_000, expires_at=day(20)),
        )
        assert when(state, reserve(25_000)) == [
            made([("soon", 10_000), ("late", 10_000), ("never", 5_000)])
        ]

    def test_oldest_grant_first_when_expiry_is_the_same(self) -> None:
        state = given(
            opened(at=day(-20)),
            granted("older", 3_000, at=day(-10)),
            granted("newer", 3_000, at=day(-5)),
        )
        assert when(state, reserve(4_000)) == [made([("older", 3_000), ("newer", 1_000)])]

    def test_a_lot_past_its_expiry_is_not_used_even_before_the_sweep(self) -> None:
        state = given(
            opened(at=day(-30)),
            granted("stale", 10_000, at=day(-30), expires_at=T0),
            granted("fresh", 1_000, at=day(-30)),
        )
        assert state.available == 11_000  # the sweep has not expired it yet
        assert when(state, reserve(2_000)) == [rejected("insufficient_credit", 2_000, 1_000)]

    def test_credit_already_reserved_is_not_reserved_again(self) -> None:
        state = given(opened(), granted("a", 10_000), reserved("r0", [("a", 7_000)]))
        assert when(state, reserve(4_000)) == [rejected("insufficient_credit", 4_000, 3_000)]


class TestUpTo:
    def test_reserves_what_is_usable_when_the_learner_pays_the_rest(self) -> None:
        state = given(opened(), granted("a", 30_000), granted("b", 5_000, earmark=HEALTH))
        assert when(state, reserve(100_000, up_to=True)) == [
            made([("a", 30_000)], requested=100_000, up_to=True)
        ]

    def test_reserves_the_amount_asked_when_there_is_enough(self) -> None:
        state = given(opened(), granted("a", 30_000))
        assert when(state, reserve(10_000, up_to=True)) == [
            made([("a", 10_000)], requested=10_000, up_to=True)
        ]

    def test_is_rejected_when_nothing_is_usable(self) -> None:
        state = given(opened(), granted("b", 5_000, earmark=HEALTH))
        assert when(state, reserve(10_000, up_to=True)) == [
            rejected("insufficient_credit", 10_000, 0)
        ]


class TestRejections:
    def test_insufficient_credit_reports_what_was_available(self) -> None:
        state = given(opened(), granted("a", 9_999))
        assert when(state, reserve(10_000)) == [rejected("insufficient_credit", 10_000, 9_999)]

    def test_a_suspended_account_reserves_nothing(self) -> None:
        state = given(
            opened(),
            granted("a", 50_000),
            WalletSuspended(account_id=ACCOUNT, occurred_at=T0, reason_code="fraud_suspected"),
        )
        assert when(state, reserve(1_000)) == [rejected("account_suspended", 1_000, 50_000)]

    def test_a_closed_account_reserves_nothing(self) -> None:
        state = given(
            opened(),
            granted("a", 50_000),
            WalletClosed(account_id=ACCOUNT, occurred_at=T0, reason_code="deceased"),
        )
        assert when(state, reserve(1_000)) == [rejected("account_closed", 1_000, 50_000)]

    def test_an_account_without_wallet_is_rejected_not_an_error(self) -> None:
        assert when(given(), reserve(1_000)) == [rejected("no_wallet", 1_000, 0)]

    def test_a_rejection_changes_no_balance(self) -> None:
        state = given(opened(), granted("a", 100))
        after = then(state, reserve(1_000))
        assert (after.available, after.reserved) == (100, 0)
        assert after.rejected == {uid("r1")}


class TestOnce:
    def test_the_same_reservation_delivered_twice_is_made_once(self) -> None:
        state = then(given(opened(), granted("a", 10_000)), reserve(4_000))
        assert when(state, reserve(4_000)) == []
        assert state.reserved == 4_000

    def test_a_second_reservation_for_the_same_enrolment_is_ignored(self) -> None:
        state = then(given(opened(), granted("a", 10_000)), reserve(4_000))
        assert when(state, reserve(4_000, reservation="r2")) == []

    def test_a_rejection_delivered_twice_is_recorded_once(self) -> None:
        state = then(given(opened(), granted("a", 100)), reserve(1_000))
        assert when(state, reserve(1_000)) == []

    def test_a_reservation_id_reused_for_another_enrolment_is_a_conflict(self) -> None:
        state = then(given(opened(), granted("a", 10_000)), reserve(4_000))
        with pytest.raises(IdConflict) as err:
            when(state, reserve(4_000, enrolment="e2"))
        assert err.value.code == "id_conflict"

    def test_an_enrolment_whose_reservation_was_released_may_reserve_again(self) -> None:
        state = then(given(opened(), granted("a", 10_000)), reserve(4_000))
        state = then(state, ReleaseReservation(account_id=ACCOUNT, reservation_id=uid("r1")))
        events = when(state, reserve(6_000, reservation="r2"))
        assert [type(e) for e in events] == [CreditsReserved]


class TestExpiryOfTheReservation:
    def test_defaults_to_the_standard_lifetime(self) -> None:
        events = when(given(opened(), granted("a", 1_000)), reserve(1_000, expires_in=None))
        assert isinstance(events[0], CreditsReserved)
        assert events[0].expires_at == T0 + DEFAULT_RESERVATION_LIFETIME

    def test_an_expiry_not_after_now_is_refused(self) -> None:
        with pytest.raises(ExpiryInPast):
            when(given(opened(), granted("a", 1_000)), reserve(1_000, expires_in=timedelta(0)))

    def test_the_reservation_holds_the_lots_it_lists(self) -> None:
        state = then(given(opened(), granted("a", 3_000), granted("b", 3_000)), reserve(4_000))
        assert state.reservations[uid("r1")].allocations == lots([("a", 3_000), ("b", 1_000)])
        assert (state.lots[uid("a")].reserved, state.lots[uid("b")].reserved) == (3_000, 1_000)
        assert (state.available, state.reserved, state.remaining) == (2_000, 4_000, 6_000)
