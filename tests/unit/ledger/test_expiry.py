"""Expiry of lots past their date and of reservations past their timeout, as events."""

from __future__ import annotations

from datetime import datetime

from services.ledger.commands import (
    CaptureReservation,
    ExpireLots,
    ExpireReservations,
    ReleaseReservation,
)
from shared.events.ledger import LotExpired, ReservationCaptured, ReservationReleased
from tests.unit.support.ledger import (
    ACCOUNT,
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

EXPIRE_LOTS = ExpireLots(account_id=ACCOUNT)
EXPIRE_RESERVATIONS = ExpireReservations(account_id=ACCOUNT)


def lot_expired(lot: str, amount: int, at: datetime) -> LotExpired:
    return LotExpired(account_id=ACCOUNT, occurred_at=at, lot_id=uid(lot), amount=amount)


class TestLots:
    def test_a_lot_expires_at_its_date_and_not_before(self) -> None:
        state = given(
            opened(),
            granted("a", 5_000, expires_at=day(30)),
            granted("b", 7_000, expires_at=day(31)),
        )
        assert when(state, EXPIRE_LOTS, now=day(29)) == []
        assert when(state, EXPIRE_LOTS, now=day(30)) == [lot_expired("a", 5_000, day(30))]
        after = then(state, EXPIRE_LOTS, now=day(30))
        assert (after.available, after.expired_total) == (7_000, 5_000)

    def test_expired_lots_in_expiry_order_and_credit_without_expiry_never(self) -> None:
        state = given(
            opened(),
            granted("never", 1_000),
            granted("b", 2_000, expires_at=day(20)),
            granted("a", 3_000, expires_at=day(10)),
        )
        assert when(state, EXPIRE_LOTS, now=day(10_000)) == [
            lot_expired("a", 3_000, day(10_000)),
            lot_expired("b", 2_000, day(10_000)),
        ]

    def test_a_sweep_run_twice_expires_once(self) -> None:
        state = then(given(opened(), granted("a", 5_000, expires_at=day(30))), EXPIRE_LOTS, day(31))
        assert when(state, EXPIRE_LOTS, now=day(32)) == []

    def test_credit_reserved_before_the_expiry_is_honoured(self) -> None:
        state = given(
            opened(),
            granted("a", 5_000, expires_at=day(30)),
            reserved("r1", [("a", 2_000)], expires_at=day(200)),
        )
        assert when(state, EXPIRE_LOTS, now=day(31)) == [lot_expired("a", 3_000, day(31))]
        state = then(state, EXPIRE_LOTS, now=day(31))
        capture = CaptureReservation(account_id=ACCOUNT, reservation_id=uid("r1"), amount=2_000)
        assert [type(e) for e in when(state, capture, now=day(40))] == [ReservationCaptured]
        after = then(state, capture, now=day(40))
        assert (after.spent_total, after.expired_total, after.lots[uid("a")].remaining) == (
            2_000,
            3_000,
            0,
        )

    def test_reserved_credit_that_comes_back_after_the_expiry_expires_with_it(self) -> None:
        state = given(
            opened(),
            granted("a", 5_000, expires_at=day(30)),
            reserved("r1", [("a", 2_000)], expires_at=day(200)),
        )
        state = then(state, EXPIRE_LOTS, now=day(31))
        release = ReleaseReservation(account_id=ACCOUNT, reservation_id=uid("r1"))
        events = when(state, release, now=day(40))
        assert [type(e) for e in events] == [ReservationReleased, LotExpired]
        assert events[1] == lot_expired("a", 2_000, day(40))
        after = then(state, release, now=day(40))
        assert (after.available, after.expired_total) == (0, 5_000)


class TestReservations:
    def test_a_reservation_past_its_timeout_is_released_as_expired(self) -> None:
        state = given(
            opened(),
            granted("a", 10_000),
            reserved("r1", [("a", 3_000)], expires_at=day(10)),
            reserved("r2", [("a", 4_000)], expires_at=day(20)),
        )
        assert when(state, EXPIRE_RESERVATIONS, now=day(10)) == [
            ReservationReleased(
                account_id=ACCOUNT,
                occurred_at=day(10),
                reservation_id=uid("r1"),
                enrolment_id=uid("enrolment-of-r1"),
                amount=3_000,
                allocations=lots([("a", 3_000)]),
                reason="expired",
            )
        ]
        after = then(state, EXPIRE_RESERVATIONS, now=day(10))
        assert after.reservations[uid("r1")].status == "expired"
        assert (after.available, after.reserved) == (6_000, 4_000)
        assert when(after, EXPIRE_RESERVATIONS, now=day(11)) == []

    def test_a_captured_reservation_never_expires(self) -> None:
        state = given(
            opened(), granted("a", 10_000), reserved("r1", [("a", 3_000)], expires_at=day(10))
        )
        capture = CaptureReservation(account_id=ACCOUNT, reservation_id=uid("r1"), amount=3_000)
        state = then(state, capture, now=day(5))
        assert when(state, EXPIRE_RESERVATIONS, now=day(100)) == []

    def test_an_expired_reservation_on_an_expired_lot_returns_nothing_spendable(self) -> None:
        state = given(
            opened(),
            granted("a", 4_000, expires_at=day(5)),
            reserved("r1", [("a", 4_000)], expires_at=day(10)),
        )
        events = when(state, EXPIRE_RESERVATIONS, now=day(10))
        assert [type(e) for e in events] == [ReservationReleased, LotExpired]
        after = then(state, EXPIRE_RESERVATIONS, now=day(10))
        assert (after.available, after.reserved, after.expired_total) == (0, 0, 4_000)
