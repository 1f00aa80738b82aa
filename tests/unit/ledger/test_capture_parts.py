"""A reservation captured in parts (milestone payments): each part at most what it still
holds, the final part releases the rest; the parts plus what was released equal what was
reserved. And what the ledger answers when it refuses a capture or a reservation."""

from __future__ import annotations

import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from services.ledger.commands import (
    CaptureReservation,
    ExpireReservations,
    ReleaseReservation,
    ReserveCredits,
)
from services.ledger.domain import (
    CaptureExceedsReservation,
    ExpiryInPast,
    ReservationNotActive,
    assert_invariants,
)
from services.ledger.domain.errors import InvariantViolation
from services.ledger.domain.evolve import evolve
from services.ledger.domain.reservations import capture_refused, reservation_refused
from shared.events.ledger import (
    CaptureRejected,
    CourseRef,
    LedgerEvent,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
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

# 10_000 reserved: 6_000 from lot "soon" (drawn first), 4_000 from lot "late".
RESERVED: list[LedgerEvent | list[LedgerEvent]] = [
    opened(),
    granted("soon", 6_000, expires_at=day(60)),
    granted("late", 8_000, expires_at=day(400)),
    reserved("r1", [("soon", 6_000), ("late", 4_000)]),
]


def part(amount: int, name: str, final: bool = False) -> CaptureReservation:
    return CaptureReservation(
        account_id=ACCOUNT,
        reservation_id=uid("r1"),
        amount=amount,
        capture_id=uid(name),
        final=final,
    )


class TestParts:
    def test_a_part_spends_from_the_first_lots_and_leaves_the_rest_reserved(self) -> None:
        state = given(*RESERVED)
        [event] = when(state, part(3_000, "start"))
        assert isinstance(event, ReservationCaptured)
        assert (event.amount, event.released, event.final) == (3_000, 0, False)
        assert event.allocations == lots([("soon", 3_000)])
        assert event.capture_id == uid("start")
        after = then(state, part(3_000, "start"))
        r = after.reservations[uid("r1")]
        assert (r.status, r.held, r.captured) == ("active", 7_000, 3_000)
        assert r.allocations == lots([("soon", 3_000), ("late", 4_000)])
        assert (after.available, after.reserved, after.spent_total) == (4_000, 7_000, 3_000)

    def test_the_final_part_releases_the_rest(self) -> None:
        state = then(given(*RESERVED), part(3_000, "start"))
        [event] = when(state, part(5_000, "completion", final=True))
        assert isinstance(event, ReservationCaptured)
        assert (event.amount, event.released) == (5_000, 2_000)
        assert event.allocations == lots([("soon", 3_000), ("late", 2_000)])
        assert event.released_allocations == lots([("late", 2_000)])
        after = then(state, part(5_000, "completion", final=True))
        r = after.reservations[uid("r1")]
        assert (r.status, r.captured, r.released) == ("captured", 8_000, 2_000)
        assert (after.available, after.reserved, after.spent_total) == (6_000, 0, 8_000)

    def test_a_part_that_takes_all_it_holds_ends_the_reservation(self) -> None:
        state = then(given(*RESERVED), part(3_000, "start"))
        after = then(state, part(7_000, "completion"))
        r = after.reservations[uid("r1")]
        assert (r.status, r.captured, r.released) == ("captured", 10_000, 0)

    def test_a_part_asked_twice_is_captured_once(self) -> None:
        state = then(given(*RESERVED), part(3_000, "start"))
        assert when(state, part(3_000, "start")) == []

    def test_a_part_beyond_what_it_holds_is_refused(self) -> None:
        state = then(given(*RESERVED), part(3_000, "start"))
        with pytest.raises(CaptureExceedsReservation):
            when(state, part(7_001, "completion", final=True))

    def test_a_release_after_a_part_gives_back_what_it_holds(self) -> None:
        state = then(given(*RESERVED), part(3_000, "start"))
        [event] = when(state, ReleaseReservation(account_id=ACCOUNT, reservation_id=uid("r1")))
        assert isinstance(event, ReservationReleased)
        assert event.amount == 7_000
        after = then(state, ReleaseReservation(account_id=ACCOUNT, reservation_id=uid("r1")))
        assert (after.available, after.reserved, after.spent_total) == (11_000, 0, 3_000)

    def test_a_part_that_would_leave_nothing_cannot_be_folded_as_a_part(self) -> None:
        state = given(*RESERVED)
        bad = ReservationCaptured(
            account_id=ACCOUNT,
            occurred_at=T0,
            reservation_id=uid("r1"),
            enrolment_id=uid("enrolment-of-r1"),
            amount=10_000,
            released=0,
            allocations=lots([("soon", 6_000), ("late", 4_000)]),
            final=False,
        )
        with pytest.raises(InvariantViolation):
            evolve(state, bad)


@settings(max_examples=200, deadline=None)
@hypothesis_given(
    parts=st.lists(st.integers(min_value=1, max_value=4_000), min_size=0, max_size=6),
    last=st.integers(min_value=0, max_value=10_000),
)
def test_parts_plus_released_equal_what_was_reserved(parts: list[int], last: int) -> None:
    state = given(*RESERVED)
    spent: list[int] = []
    for i, amount in enumerate(parts):
        r = state.reservations[uid("r1")]
        if r.status != "active" or amount > r.held:
            break
        state = then(state, part(amount, f"p{i}"))
        spent.append(amount)
        assert_invariants(state)
    r = state.reservations[uid("r1")]
    if r.status == "active":
        final = min(max(last, 1), r.held)
        state = then(state, part(final, "final", final=True))
        spent.append(final)
    r = state.reservations[uid("r1")]
    assert r.status == "captured"
    assert sum(spent) + r.released == r.amount == 10_000
    assert r.captured == sum(spent) == state.spent_total
    assert state.reserved == 0
    assert state.available == 14_000 - sum(spent)
    assert_invariants(state)


class TestRefusals:
    def test_a_capture_of_an_expired_reservation_is_answered_with_its_reason(self) -> None:
        state = given(*RESERVED)
        state = then(state, ExpireReservations(account_id=ACCOUNT), now=day(400))
        with pytest.raises(ReservationNotActive) as refused:
            when(state, part(3_000, "completion", final=True))
        event = capture_refused(state, part(3_000, "completion", final=True), refused.value, T0)
        assert isinstance(event, CaptureRejected)
        assert (event.reason, event.capture_id, event.amount) == (
            "reservation_expired",
            uid("completion"),
            3_000,
        )
        assert evolve(state, event).version == state.version + 1

    def test_a_reservation_that_would_expire_in_the_past_is_answered(self) -> None:
        state = given(*RESERVED)
        cmd = ReserveCredits(
            account_id=ACCOUNT,
            reservation_id=uid("r2"),
            enrolment_id=uid("e2"),
            amount=100,
            course=CourseRef(course_id=uid("course")),
            expires_at=T0,
        )
        with pytest.raises(ExpiryInPast) as refused:
            when(state, cmd)
        event = reservation_refused(state, cmd, refused.value, T0)
        assert isinstance(event, ReservationRejected)
        assert event.reason == "expiry_in_past"
