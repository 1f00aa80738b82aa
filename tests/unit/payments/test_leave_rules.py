"""Paid training leave's rules, as pure functions: the deadline, the employer's decision,
the lapse, the compensation (rate and cap) and the ledger's answers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.payments.config import LeaveConfig
from services.payments.domain import leave as rules
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import Invalid, PaymentsError
from services.payments.domain.leave import Asked, Standing

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CONFIG = LeaveConfig(hourly_rate_cents=1_500, cap_cents=50_000, decision_days=14)
ENROLMENT = Enrolment(
    enrolment_id=uuid.uuid4(),
    account_id=uuid.uuid4(),
    provider_id="p1",
    course_id=uuid.uuid4(),
    course_version=1,
    session_id=uuid.uuid4(),
    starts_on=date(2026, 4, 1),
    ends_on=date(2026, 4, 20),
    price=100_000,
    status="confirmed",
    proposed_by="p1",
    proposed_at=NOW,
    updated_at=NOW,
)
IN_WORK = Standing("employed", "employer", 35, live_request=False)


def asked(hours: int = 35, days: int = 5) -> Asked:
    return Asked("acme", hours, [date(2026, 4, 1) + timedelta(days=n) for n in range(days)])


def request(now: datetime = NOW, enrolment: Enrolment = ENROLMENT) -> rules.LeaveRequest:
    made, events = rules.ask(
        CONFIG, enrolment, asked(), IN_WORK, request_id=uuid.uuid4(), actor="learner", now=now
    )
    assert [type(e).__name__ for e in events] == ["LeaveRequested"]
    return made


def test_the_deadline_is_the_window_or_the_session_start_whichever_comes_first() -> None:
    assert request().decide_by == NOW + timedelta(days=14)
    soon = replace(ENROLMENT, starts_on=date(2026, 3, 5), ends_on=date(2026, 3, 9))
    made, _ = rules.ask(
        CONFIG,
        soon,
        Asked("acme", 8, [date(2026, 3, 5)]),
        IN_WORK,
        request_id=uuid.uuid4(),
        actor="learner",
        now=NOW,
    )
    assert made.decide_by == datetime(2026, 3, 5, tzinfo=UTC)
    with pytest.raises(PaymentsError) as caught:
        rules.ask(
            CONFIG,
            soon,
            Asked("acme", 8, [date(2026, 3, 5)]),
            IN_WORK,
            request_id=uuid.uuid4(),
            actor="learner",
            now=datetime(2026, 3, 5, 8, tzinfo=UTC),
        )
    assert caught.value.code == "session_started"


@pytest.mark.parametrize(
    ("standing", "ask", "code"),
    [
        (replace(IN_WORK, employment_status="self_employed"), asked(), "not_in_work"),
        (replace(IN_WORK, employer_kind="region"), asked(), "employer_not_found"),
        (replace(IN_WORK, live_request=True), asked(), "leave_already_requested"),
        (IN_WORK, asked(hours=36), "hours_exceed_workload"),
        (IN_WORK, asked(hours=17, days=2), "hours_exceed_days"),
        (IN_WORK, asked(days=25), "date_outside_session"),
        (IN_WORK, Asked("acme", 8, [date(2026, 4, 1)] * 2), "invalid_dates"),
    ],
)
def test_a_request_is_refused_with_a_code(standing: Standing, ask: Asked, code: str) -> None:
    with pytest.raises((PaymentsError, Invalid)) as caught:
        rules.ask(CONFIG, ENROLMENT, ask, standing, request_id=uuid.uuid4(), actor="l", now=NOW)
    assert caught.value.code == code


def test_the_employer_decides_once_and_before_the_deadline() -> None:
    made = request()
    approved, events = rules.approve(made, "training_plan", "ok", "hr", NOW)
    assert approved.status == "approved" and approved.note == "ok"
    assert "note" not in events[0].model_dump()
    with pytest.raises(PaymentsError) as caught:
        rules.refuse(approved, "other", None, "hr", NOW)
    assert caught.value.code == "leave_decided"
    late = made.decide_by
    with pytest.raises(PaymentsError) as caught:
        rules.approve(made, "training_plan", None, "hr", late)
    assert caught.value.code == "decision_deadline_passed"
    assert rules.lapse(made, late - timedelta(seconds=1)) == (made, [])
    lapsed, events = rules.lapse(made, late)
    assert lapsed.status == "lapsed" and type(events[0]).__name__ == "LeaveLapsed"
    assert rules.seen(made, late).status == "lapsed"


def test_compensation_is_hours_at_the_rate_up_to_the_cap_and_claimed_once() -> None:
    assert rules.compensation_amount(CONFIG, 10) == 15_000
    assert rules.compensation_amount(CONFIG, 35) == 50_000
    approved, _ = rules.approve(request(), "training_plan", None, "hr", NOW)
    with pytest.raises(PaymentsError) as caught:
        rules.claim_compensation(
            CONFIG, approved, ENROLMENT, claim_id=uuid.uuid4(), actor="hr", now=NOW
        )
    assert caught.value.code == "training_not_completed"
    done = replace(ENROLMENT, status="completed")
    claimed, claim, events = rules.claim_compensation(
        CONFIG, approved, done, claim_id=uuid.uuid4(), actor="hr", now=NOW
    )
    assert claim.amount == 50_000 and claim.provider_id == "employer:acme"
    assert claim.attestation == "not_required" and claim.milestone == "leave_compensation"
    assert claimed.status == "compensation_claimed" and events[0].amount == 50_000  # type: ignore[attr-defined]
    with pytest.raises(PaymentsError) as caught:
        rules.claim_compensation(CONFIG, claimed, done, claim_id=uuid.uuid4(), actor="hr", now=NOW)
    assert caught.value.code == "compensation_claimed"

    paid, captured, events = rules.paid_out(claimed, claim, 50_000, NOW)
    assert paid.status == "compensated" and captured.status == "captured"
    assert rules.paid_out(paid, captured, 50_000, NOW)[2] == []
    again, rejected, events = rules.payout_refused(claimed, claim, "budget_exceeded", NOW)
    assert again.status == "approved" and again.compensation_refused == "budget_exceeded"
    assert rejected.status == "rejected" and rejected.reason == "budget_exceeded"
