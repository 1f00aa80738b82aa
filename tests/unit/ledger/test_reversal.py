"""Reversals: compensating entries for a capture or a grant; nothing is ever deleted."""

from __future__ import annotations

import pytest

from services.ledger.commands import (
    CaptureReservation,
    CaptureTarget,
    GrantTarget,
    ReverseEntry,
)
from services.ledger.domain import (
    EntitlementPolicy,
    LotNotFound,
    LotReserved,
    LotSpent,
    NotCaptured,
    NothingToReverse,
    allocate_entitlement,
)
from shared.events.ledger import EntryReversed, LedgerEvent, LotExpired, ReservationCaptured
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


def reverse_capture(reservation: str = "r1") -> ReverseEntry:
    return ReverseEntry(
        account_id=ACCOUNT,
        target=CaptureTarget(reservation_id=uid(reservation)),
        reason_code="fraud",
        actor="admin:alice",
    )


def reverse_grant(lot: str) -> ReverseEntry:
    return ReverseEntry(
        account_id=ACCOUNT,
        target=GrantTarget(lot_id=uid(lot)),
        reason_code="duplicate_grant",
        actor="admin:alice",
    )


def capture_of_r1(
    taken: list[tuple[str, int]], given_back: list[tuple[str, int]] | None = None
) -> ReservationCaptured:
    back = given_back or []
    return ReservationCaptured(
        account_id=ACCOUNT,
        occurred_at=T0,
        reservation_id=uid("r1"),
        enrolment_id=uid("enrolment-of-r1"),
        amount=sum(a for _, a in taken),
        released=sum(a for _, a in back),
        allocations=lots(taken),
        released_allocations=lots(back),
    )


# versions: 1 opened, 2 grant a, 3 grant b, 4 reserved, 5 captured
CAPTURED: list[LedgerEvent | list[LedgerEvent]] = [
    opened(),
    granted("a", 6_000, expires_at=day(60)),
    granted("b", 8_000),
    reserved("r1", [("a", 6_000), ("b", 4_000)]),
    capture_of_r1([("a", 6_000), ("b", 3_000)], [("b", 1_000)]),
]


class TestReversingACapture:
    def test_gives_the_credit_back_to_the_lots_it_came_from(self) -> None:
        state = given(*CAPTURED)
        assert (state.available, state.spent_total) == (5_000, 9_000)
        assert when(state, reverse_capture()) == [
            EntryReversed(
                account_id=ACCOUNT,
                occurred_at=T0,
                target_event="ledger.ReservationCaptured",
                target_version=5,
                reservation_id=uid("r1"),
                amount=9_000,
                allocations=lots([("a", 6_000), ("b", 3_000)]),
                reason_code="fraud",
                actor="admin:alice",
            )
        ]
        after = then(state, reverse_capture())
        assert (after.lots[uid("a")].remaining, after.lots[uid("b")].remaining) == (6_000, 8_000)
        assert (after.available, after.spent_total, after.reversed_capture_total) == (
            14_000,
            9_000,
            9_000,
        )
        assert after.net_spent == 0
        assert after.reservations[uid("r1")].status == "captured"  # the history stays

    def test_is_applied_once(self) -> None:
        state = then(given(*CAPTURED), reverse_capture())
        assert when(state, reverse_capture()) == []

    def test_a_reservation_never_captured_has_no_capture_to_reverse(self) -> None:
        state = given(opened(), granted("a", 6_000), reserved("r1", [("a", 6_000)]))
        with pytest.raises(NotCaptured):
            when(state, reverse_capture())

    def test_credit_given_back_to_a_lot_past_its_expiry_expires_with_it(self) -> None:
        state = given(*CAPTURED)
        events = when(state, reverse_capture(), now=day(61))
        assert [type(e) for e in events] == [EntryReversed, LotExpired]
        assert events[1] == LotExpired(
            account_id=ACCOUNT, occurred_at=day(61), lot_id=uid("a"), amount=6_000
        )
        after = then(state, reverse_capture(), now=day(61))
        assert (after.available, after.expired_total) == (8_000, 6_000)


class TestReversingAGrant:
    def test_removes_what_remains_in_its_lot(self) -> None:
        state = given(opened(), granted("a", 6_000), granted("b", 1_000))
        assert when(state, reverse_grant("a")) == [
            EntryReversed(
                account_id=ACCOUNT,
                occurred_at=T0,
                target_event="ledger.CreditsGranted",
                target_version=2,
                lot_id=uid("a"),
                amount=6_000,
                allocations=lots([("a", 6_000)]),
                reason_code="duplicate_grant",
                actor="admin:alice",
            )
        ]
        after = then(state, reverse_grant("a"))
        assert (after.available, after.granted_total, after.reversed_grant_total) == (
            1_000,
            7_000,
            6_000,
        )
        assert after.net_granted == 1_000
        assert uid("a") in after.lots  # never deleted

    def test_is_applied_once(self) -> None:
        state = then(given(opened(), granted("a", 6_000)), reverse_grant("a"))
        assert when(state, reverse_grant("a")) == []

    def test_is_refused_while_part_of_the_lot_is_reserved(self) -> None:
        state = given(opened(), granted("a", 6_000), reserved("r1", [("a", 1)]))
        with pytest.raises(LotReserved) as err:
            when(state, reverse_grant("a"))
        assert err.value.code == "lot_reserved"

    def test_is_refused_once_part_of_the_lot_was_spent(self) -> None:
        with pytest.raises(LotSpent) as err:
            when(given(*CAPTURED), reverse_grant("b"))
        assert err.value.code == "lot_spent"

    def test_is_possible_again_once_the_spending_was_reversed(self) -> None:
        state = then(given(*CAPTURED), reverse_capture())
        after = then(state, reverse_grant("b"))
        assert after.lots[uid("b")].remaining == 0
        assert after.available == 6_000

    def test_a_fully_expired_lot_has_nothing_to_reverse(self) -> None:
        state = given(
            opened(),
            granted("a", 6_000, expires_at=day(1)),
            LotExpired(account_id=ACCOUNT, occurred_at=day(1), lot_id=uid("a"), amount=6_000),
        )
        with pytest.raises(NothingToReverse):
            when(state, reverse_grant("a"), now=day(2))

    def test_an_unknown_lot_cannot_be_reversed(self) -> None:
        with pytest.raises(LotNotFound):
            when(given(opened()), reverse_grant("nope"))

    def test_a_reversed_statutory_grant_is_not_granted_again_by_the_allocation(self) -> None:
        policy = EntitlementPolicy(year=2025)
        state = given(opened(), granted("y2025", 50_000, kind="statutory", year=2025))
        state = then(state, reverse_grant("y2025"))
        assert allocate_entitlement(state, policy, lot_id=uid("again"), now=T0) == []


class TestTargetVersion:
    def test_a_reversal_refers_to_the_version_the_store_gave_the_entry(self) -> None:
        capture = CaptureReservation(account_id=ACCOUNT, reservation_id=uid("r1"), amount=500)
        state = then(given(opened(), granted("a", 6_000), reserved("r1", [("a", 1_000)])), capture)
        assert state.version == 4  # opened, granted, reserved, captured
        events = when(state, reverse_capture())
        assert isinstance(events[0], EntryReversed)
        assert events[0].target_version == 4
