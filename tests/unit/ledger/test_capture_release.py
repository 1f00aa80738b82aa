"""Second phase of a reservation: capture (in full or in part) or release."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.ledger.commands import CaptureReservation, ReleaseReservation
from services.ledger.domain import (
    CaptureExceedsReservation,
    IdConflict,
    ReservationNotActive,
    ReservationNotFound,
)
from shared.events.ledger import (
    LedgerEvent,
    LotExpired,
    ReservationCaptured,
    ReservationReleased,
    WalletClosed,
    WalletSuspended,
)
from tests.unit.support.ledger import (
    ACCOUNT,
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


def capture(amount: int, reservation: str = "r1") -> CaptureReservation:
    return CaptureReservation(account_id=ACCOUNT, reservation_id=uid(reservation), amount=amount)


def release(reservation: str = "r1", reason: str = "released") -> ReleaseReservation:
    return ReleaseReservation(
        account_id=ACCOUNT,
        reservation_id=uid(reservation),
        reason=reason,
    )


def captured(
    taken: list[tuple[str, int]], given_back: list[tuple[str, int]], at: datetime = T0
) -> ReservationCaptured:
    return ReservationCaptured(
        account_id=ACCOUNT,
        occurred_at=at,
        reservation_id=uid("r1"),
        enrolment_id=uid("enrolment-of-r1"),
        amount=sum(a for _, a in taken),
        released=sum(a for _, a in given_back),
        allocations=lots(taken),
        released_allocations=lots(given_back),
    )


# 10_000 reserved: 6_000 from lot "soon" (drawn first), 4_000 from lot "late".
RESERVED: list[LedgerEvent | list[LedgerEvent]] = [
    opened(),
    granted("soon", 6_000, expires_at=day(60)),
    granted("late", 8_000, expires_at=day(400)),
    reserved("r1", [("soon", 6_000), ("late", 4_000)]),
]


class TestCapture:
    def test_a_full_capture_spends_the_reservation(self) -> None:
        state = given(*RESERVED)
        assert when(state, capture(10_000)) == [captured([("soon", 6_000), ("late", 4_000)], [])]
        after = then(state, capture(10_000))
        assert (after.available, after.reserved, after.spent_total) == (4_000, 0, 10_000)
        assert after.reservations[uid("r1")].status == "captured"

    def test_a_partial_capture_takes_lots_in_reservation_order_and_releases_the_rest(
        self,
    ) -> None:
        state = given(*RESERVED)
        assert when(state, capture(7_000)) == [
            captured([("soon", 6_000), ("late", 1_000)], [("late", 3_000)])
        ]
        after = then(state, capture(7_000))
        assert (after.available, after.reserved, after.spent_total) == (7_000, 0, 7_000)
        assert after.lots[uid("late")].remaining == 7_000
        assert after.lots[uid("soon")].remaining == 0

    def test_a_capture_delivered_twice_is_applied_once(self) -> None:
        state = then(given(*RESERVED), capture(7_000))
        assert when(state, capture(7_000)) == []

    def test_a_second_capture_for_another_amount_is_a_conflict(self) -> None:
        state = then(given(*RESERVED), capture(7_000))
        with pytest.raises(IdConflict):
            when(state, capture(8_000))

    def test_more_than_reserved_cannot_be_captured(self) -> None:
        with pytest.raises(CaptureExceedsReservation) as err:
            when(given(*RESERVED), capture(10_001))
        assert err.value.code == "capture_exceeds_reservation"

    def test_a_released_reservation_cannot_be_captured(self) -> None:
        state = then(given(*RESERVED), release())
        with pytest.raises(ReservationNotActive):
            when(state, capture(1_000))

    def test_an_unknown_reservation_cannot_be_captured(self) -> None:
        with pytest.raises(ReservationNotFound):
            when(given(*RESERVED), capture(1_000, reservation="nope"))

    def test_training_delivered_is_paid_even_if_the_account_was_suspended_or_closed(
        self,
    ) -> None:
        for status_change in (
            WalletSuspended(account_id=ACCOUNT, occurred_at=T0, reason_code="eligibility_review"),
            WalletClosed(account_id=ACCOUNT, occurred_at=T0, reason_code="moved_abroad"),
        ):
            state = given(*RESERVED, status_change)
            assert when(state, capture(10_000)) == [
                captured([("soon", 6_000), ("late", 4_000)], [])
            ]

    def test_the_released_remainder_of_a_lot_past_its_expiry_expires_at_once(self) -> None:
        state = given(*RESERVED)
        assert when(state, capture(3_000), now=day(90)) == [
            captured([("soon", 3_000)], [("soon", 3_000), ("late", 4_000)], at=day(90)),
            LotExpired(account_id=ACCOUNT, occurred_at=day(90), lot_id=uid("soon"), amount=3_000),
        ]


class TestRelease:
    def test_a_release_gives_the_whole_amount_back_to_its_lots(self) -> None:
        state = given(*RESERVED)
        assert when(state, release(reason="cancelled")) == [
            ReservationReleased(
                account_id=ACCOUNT,
                occurred_at=T0,
                reservation_id=uid("r1"),
                enrolment_id=uid("enrolment-of-r1"),
                amount=10_000,
                allocations=lots([("soon", 6_000), ("late", 4_000)]),
                reason="cancelled",
            )
        ]
        after = then(state, release())
        assert (after.available, after.reserved) == (14_000, 0)
        assert after.reservations[uid("r1")].status == "released"

    def test_a_release_delivered_twice_is_applied_once(self) -> None:
        state = then(given(*RESERVED), release())
        assert when(state, release()) == []

    def test_a_captured_reservation_cannot_be_released(self) -> None:
        state = then(given(*RESERVED), capture(10_000))
        with pytest.raises(ReservationNotActive) as err:
            when(state, release())
        assert err.value.kind == "conflict"
