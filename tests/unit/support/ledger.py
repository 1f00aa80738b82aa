"""Given/when/then helpers for the ledger's domain tests: fixed ids, a fixed clock, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ledger.commands import Command
from services.ledger.domain import WalletState, assert_invariants, decide, replay
from shared.events.ledger import (
    CourseRef,
    CreditsGranted,
    CreditsReserved,
    Earmark,
    LedgerEvent,
    LotAmount,
    ProfileNoted,
    WalletOpened,
    WalletProfile,
)

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000acc1")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    """``n`` days after T0."""
    return T0 + timedelta(days=n)


def uid(name: str) -> uuid.UUID:
    """A readable, stable id per name (the same name always gives the same id)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"ila-test:{name}")


COURSE = CourseRef(course_id=uid("course"), isced_field="0613", eqf_level=5, tags=("digital",))
OTHER_COURSE = CourseRef(course_id=uid("other-course"), isced_field="0413", eqf_level=4)

PROFILE = WalletProfile(qualification_level=5, employment_status="employed")


def opened(at: datetime = T0, profile: WalletProfile | None = None) -> list[LedgerEvent]:
    events: list[LedgerEvent] = [WalletOpened(account_id=ACCOUNT, occurred_at=at)]
    if profile is not None:
        events.append(ProfileNoted(account_id=ACCOUNT, occurred_at=at, profile=profile))
    return events


def granted(
    lot: str,
    amount: int,
    *,
    at: datetime = T0,
    expires_at: datetime | None = None,
    earmark: Earmark | None = None,
    kind: Any = "top_up",
    year: int | None = None,
    funder_id: str = "region-idf",
    reason_code: Any = "top_up",
) -> CreditsGranted:
    return CreditsGranted(
        account_id=ACCOUNT,
        occurred_at=at,
        lot_id=uid(lot),
        amount=amount,
        funder_id=funder_id,
        reason_code=reason_code,
        kind=kind,
        year=year,
        expires_at=expires_at,
        earmark=earmark,
    )


def reserved(
    reservation: str,
    allocations: list[tuple[str, int]],
    *,
    enrolment: str | None = None,
    requested: int | None = None,
    course: CourseRef = COURSE,
    at: datetime = T0,
    expires_at: datetime | None = None,
    up_to: bool = False,
) -> CreditsReserved:
    amount = sum(a for _, a in allocations)
    return CreditsReserved(
        account_id=ACCOUNT,
        occurred_at=at,
        reservation_id=uid(reservation),
        enrolment_id=uid(enrolment or f"enrolment-of-{reservation}"),
        course=course,
        requested=requested if requested is not None else amount,
        amount=amount,
        up_to=up_to,
        allocations=lots(allocations),
        expires_at=expires_at or at + timedelta(days=30),
    )


def lots(allocations: list[tuple[str, int]]) -> tuple[LotAmount, ...]:
    return tuple(LotAmount(lot_id=uid(lot), amount=amount) for lot, amount in allocations)


def given(*events: LedgerEvent | list[LedgerEvent]) -> WalletState:
    flat: list[LedgerEvent] = []
    for e in events:
        flat.extend(e if isinstance(e, list) else [e])
    state = replay(flat)
    assert_invariants(state)
    return state


def when(state: WalletState, command: Command, now: datetime = T0) -> list[LedgerEvent]:
    """Decide, and check the decision leaves a consistent wallet."""
    events = decide(state, command, now)
    assert_invariants(replay(events, state))
    return events


def then(state: WalletState, command: Command, now: datetime = T0) -> WalletState:
    """The wallet after the command's events."""
    return replay(when(state, command, now), state)
