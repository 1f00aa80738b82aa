"""The evidence and attestation rules of a claim, as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.payments.domain.attestation import check_attestation_open
from services.payments.domain.errors import Invalid, PaymentsError
from services.payments.domain.submission import check_claim_evidence

START, END = date(2026, 3, 2), date(2026, 3, 20)
END_AT = datetime(2026, 3, 20, 17, tzinfo=UTC)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def check(**kw: Any) -> None:
    args: dict[str, Any] = {
        "milestone": "completion",
        "started_on": START,
        "completed_on": END,
        "attendance_hours": 35.0,
        "starts_on": START,
        "ends_on": END,
        "ends_at": END_AT,
        "now": at(END + timedelta(days=1)),
    }
    args.update(kw)
    if "today" in args:
        args["now"] = at(args.pop("today"))
    check_claim_evidence(**args)


def refusal(**kw: Any) -> tuple[str, str | None]:
    with pytest.raises(Invalid) as caught:
        check(**kw)
    return caught.value.code, caught.value.field


def test_evidence_within_the_session_after_its_end_is_accepted() -> None:
    check()
    check(started_on=START + timedelta(days=3), completed_on=START + timedelta(days=3))
    check(milestone="start", completed_on=None, today=START)  # the advance, on the first day
    check(attendance_hours=19 * 24)


def test_evidence_outside_the_session_or_in_the_future_is_refused() -> None:
    today = END + timedelta(days=1)
    assert refusal(completed_on=today + timedelta(days=170)) == (
        "date_in_future",
        "evidence.completed_on",
    )
    assert refusal(milestone="start", completed_on=None, today=START - timedelta(days=1)) == (
        "date_in_future",
        "evidence.started_on",
    )
    assert refusal(started_on=START - timedelta(days=1)) == (
        "date_outside_session",
        "evidence.started_on",
    )
    assert refusal(completed_on=today) == ("date_outside_session", "evidence.completed_on")
    assert refusal(attendance_hours=19 * 24 + 1) == (
        "attendance_exceeds_session",
        "evidence.attendance_hours",
    )


def test_a_completion_waits_for_the_session_to_end() -> None:
    assert refusal(completed_on=START, today=START) == ("session_not_over", "milestone")
    assert refusal(completed_on=END, now=END_AT - timedelta(seconds=1)) == (
        "session_not_over",
        "milestone",
    )
    check(completed_on=END, now=END_AT)
    check(completed_on=END, today=END + timedelta(days=1))
    # only the last day known: from the day after it
    assert refusal(ends_at=None, now=at(END, 23)) == ("session_not_over", "milestone")
    check(ends_at=None, now=at(END + timedelta(days=1), 0))


def test_the_attestation_window() -> None:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    until = now + timedelta(days=1)
    for status in ("approved", "held", "captured"):
        check_attestation_open(status=status, attestation="pending", attest_until=until, now=now)
    for status, attestation, deadline, code in (
        ("captured", "pending", now, "attestation_window_closed"),
        ("captured", "pending", None, "attestation_window_closed"),
        ("captured", "attested", until, "not_awaiting_attestation"),
        ("captured", "lapsed", until, "not_awaiting_attestation"),
        ("rejected", "pending", until, "not_awaiting_attestation"),
        ("in_payout", "pending", until, "not_awaiting_attestation"),
    ):
        with pytest.raises(PaymentsError) as caught:
            check_attestation_open(
                status=status, attestation=attestation, attest_until=deadline, now=now
            )
        assert caught.value.code == code, (status, attestation)
