"""The payments rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.payments.config import PaymentsConfig
from services.payments.domain import fees, reservations, views
from services.payments.domain.cancellation import Cancellation, decide_cancellation
from services.payments.domain.errors import PaymentsError
from services.payments.domain.proposal import check_proposal, velocity_exceeded
from services.payments.domain.submission import ClaimDecision, ClaimSubject, decide_claim
from services.payments.domain.views import AccountView, CourseView, LotView, SessionView

CFG = PaymentsConfig()
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
TODAY = NOW.date()
COURSE = CourseView(uuid.uuid4(), "p1", 1, "approved", 100_000, "0613", 5, ("digital",))
SESSION = SessionView(uuid.uuid4(), COURSE.course_id, TODAY, TODAY + timedelta(days=30), 2, False)
ACCOUNT = AccountView(uuid.uuid4(), "active", "employed")


@pytest.mark.parametrize(
    "rate, amount",
    [
        (0, 25_000),
        (24, 25_000),
        (25, 25_000),
        (26, 26_000),
        (79, 79_000),
        (80, 100_000),
        (100, 100_000),
    ],
)
def test_bands(rate: int, amount: int) -> None:
    assert fees.band_amount(CFG, 100_000, rate) == amount


def test_bands_are_configurable() -> None:
    cfg = PaymentsConfig(band_floor_rate=50, band_floor_share=0, band_full_rate=100)
    assert fees.band_amount(cfg, 1_000, 49) == 0
    assert fees.band_amount(cfg, 1_000, 99) == 990
    assert fees.band_amount(cfg, 1_000, 100) == 1_000
    with pytest.raises(ValueError):
        PaymentsConfig(band_floor_rate=90, band_full_rate=80)


def test_participation_fee_and_its_exemptions() -> None:
    assert fees.participation_fee(CFG, ACCOUNT, COURSE, [], NOW) == (10_000, None)
    unemployed = AccountView(ACCOUNT.account_id, "active", "unemployed")
    assert fees.participation_fee(CFG, unemployed, COURSE, [], NOW)[0] == 0
    high = AccountView(ACCOUNT.account_id, "active", "employed", "high")
    cfg = PaymentsConfig(fee_exempt_tiers=("high",))
    assert fees.participation_fee(cfg, high, COURSE, [], NOW) == (0, "need_tier:high")
    assert fees.participation_fee(cfg, ACCOUNT, COURSE, [], NOW) == (10_000, None)
    earmarked = LotView("top_up", 20_000, {"isced_fields": ["06"]}, None, False)
    assert fees.participation_fee(CFG, ACCOUNT, COURSE, [earmarked], NOW) == (
        0,
        "earmarked_top_up",
    )
    for lot in (
        LotView("top_up", 20_000, {"isced_fields": ["01"]}, None, False),  # another field
        LotView("top_up", 5_000, {"isced_fields": ["06"]}, None, False),  # too small
        LotView("top_up", 20_000, {"isced_fields": ["06"]}, NOW, False),  # expired
        LotView("top_up", 20_000, {"isced_fields": ["06"]}, None, True),  # reversed
        LotView("top_up", 20_000, None, None, False),  # not earmarked
        LotView("statutory", 20_000, {"isced_fields": ["06"]}, None, False),
    ):
        assert fees.participation_fee(CFG, ACCOUNT, COURSE, [lot], NOW)[0] == 10_000, lot
    assert fees.participation_fee(
        PaymentsConfig(participation_fee=0), ACCOUNT, COURSE, [], NOW
    ) == (0, None)


def test_earmark_matching_mirrors_the_ledger() -> None:
    assert fees.earmark_matches({"eqf_levels": [5], "tags": ["digital"]}, COURSE)
    assert not fees.earmark_matches({"eqf_levels": [4]}, COURSE)
    assert not fees.earmark_matches({"tags": ["green"]}, COURSE)
    assert fees.earmark_matches({"course_ids": [str(COURSE.course_id)]}, COURSE)


def test_credit_request_needs_something_to_pay() -> None:
    assert fees.credit_request(100_000, 10_000) == 90_000
    with pytest.raises(PaymentsError) as exc:
        fees.credit_request(10_000, 10_000)
    assert exc.value.code == "price_within_participation_fee"


def proposal(**kw: object) -> None:
    args: dict[str, object] = {
        "provider_id": "p1",
        "provider_status": "accredited",
        "account": ACCOUNT,
        "course": COURSE,
        "session": SESSION,
        "seats_taken": 0,
        "today": TODAY,
    }
    args.update(kw)
    check_proposal(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"provider_status": None}, "provider_unknown"),
        ({"provider_status": "suspended"}, "provider_not_eligible"),
        ({"provider_status": "qa_expired"}, "provider_not_eligible"),
        ({"provider_id": "p2"}, "course_of_another_provider"),
        ({"course": None}, "course_not_found"),
        (
            {"course": CourseView(COURSE.course_id, "p1", 2, "withdrawn", 1, None, None, ())},
            "course_not_approved",
        ),
        ({"session": None}, "session_not_found"),
        ({"seats_taken": 2}, "session_full"),
        ({"today": TODAY + timedelta(days=31)}, "session_ended"),
        ({"account": None}, "account_not_found"),
        (
            {"account": AccountView(ACCOUNT.account_id, "closed", "employed")},
            "account_not_active",
        ),
    ],
)
def test_proposal_checks(change: dict[str, object], code: str) -> None:
    proposal()
    with pytest.raises(PaymentsError) as exc:
        proposal(**change)
    assert exc.value.code == code


def test_provider_standing_lapses_with_its_quality_assurance() -> None:
    assert views.provider_standing("accredited", TODAY, TODAY) == "accredited"
    assert views.provider_standing("accredited", TODAY - timedelta(days=1), TODAY) == "qa_expired"
    assert views.provider_standing("suspended", None, TODAY) == "suspended"


def test_velocity() -> None:
    cfg = PaymentsConfig(velocity_per_hour=3)
    assert not velocity_exceeded(cfg, 2)
    assert velocity_exceeded(cfg, 3)


SUBJECT = ClaimSubject(
    "p1",
    "confirmed",
    100_000,
    90_000,
    0,
    TODAY - timedelta(days=1),
    TODAY + timedelta(days=100),
    "active",
    90_000,
)


def claim(subject: ClaimSubject | None = SUBJECT, **kw: object) -> ClaimDecision:
    args: dict[str, object] = {
        "claimant": "p1",
        "subject": subject,
        "milestone": "completion",
        "completion_rate": 100,
        "earlier_claims": [],
        "provider_status": "accredited",
        "today": TODAY,
    }
    args.update(kw)
    return decide_claim(CFG, **args)  # type: ignore[arg-type]


def test_claim_decisions() -> None:
    assert claim() == ClaimDecision("approved", None, 90_000)  # capped at the reservation
    assert claim(completion_rate=50).amount == 50_000
    assert claim(provider_status="suspended") == ClaimDecision("held", "provider_suspended", 90_000)
    assert claim(milestone="start").amount == 30_000
    short = ClaimSubject(**{**SUBJECT.__dict__, "ends_on": TODAY + timedelta(days=10)})
    assert claim(short, milestone="start").reason == "no_start_milestone"
    cases = {
        "enrolment_not_found": claim(None),
        "enrolment_of_another_provider": claim(claimant="p2"),
        "duplicate_claim": claim(earlier_claims=[("completion", "captured")]),
        "enrolment_cancelled": claim(ClaimSubject(**{**SUBJECT.__dict__, "status": "cancelled"})),
        "enrolment_not_confirmed": claim(
            ClaimSubject(**{**SUBJECT.__dict__, "status": "awaiting_co_payment"})
        ),
        "outside_claim_window": claim(today=TODAY - timedelta(days=2)),
        "nothing_reserved": claim(
            ClaimSubject(**{**SUBJECT.__dict__, "reservation_status": "released"})
        ),
        "completion_already_claimed": claim(
            ClaimSubject(**{**SUBJECT.__dict__, "status": "completed"}), milestone="start"
        ),
    }
    for reason, decision in cases.items():
        assert decision == ClaimDecision("rejected", reason), reason
    # the window closes claim_window_days after the session's last day
    assert claim(today=TODAY + timedelta(days=190)).status == "approved"
    assert claim(today=TODAY + timedelta(days=191)).reason == "outside_claim_window"
    # a rejected claim does not count as a duplicate
    assert claim(earlier_claims=[("completion", "rejected")]).status == "approved"
    with pytest.raises(PaymentsError):
        claim(ClaimSubject(**{**SUBJECT.__dict__, "reservation_status": "requested"}))


def cancellation(**kw: object) -> Cancellation:
    args: dict[str, object] = {
        "by": "learner",
        "status": "confirmed",
        "confirmed_at": NOW,
        "starts_on": TODAY + timedelta(days=30),
        "price": 100_000,
        "covered": 90_000,
        "claim_in_flight": False,
        "now": NOW + timedelta(days=1),
    }
    args.update(kw)
    return decide_cancellation(CFG, **args)  # type: ignore[arg-type]


def test_cancellation_rules() -> None:
    assert cancellation() == Cancellation("withdrawal", 0)
    assert cancellation(now=NOW + timedelta(days=15)) == Cancellation("late", 10_000)
    assert cancellation(starts_on=TODAY) == Cancellation("late", 10_000)
    assert cancellation(covered=5_000, now=NOW + timedelta(days=15)).provider_share == 5_000
    assert cancellation(by="provider", now=NOW + timedelta(days=99)) == Cancellation("provider", 0)
    assert cancellation(status="held").kind == "before_confirmation"
    for bad in ({"status": "reserving"}, {"status": "completed"}, {"claim_in_flight": True}):
        with pytest.raises(PaymentsError):
            cancellation(**bad)


def test_reservation_outlives_the_claim_window() -> None:
    end = date(2026, 6, 1)
    expiry = reservations.reservation_expiry(CFG, end, NOW)
    assert expiry > datetime.combine(
        end + timedelta(days=CFG.claim_window_days), datetime.min.time(), tzinfo=UTC
    )
