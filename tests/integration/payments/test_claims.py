"""Claims: bands, the reservation cap, every rejection, capture by the ledger, the
certified completion, the start milestone, and fraud holds."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.integration.payments.conftest import World
from tests.support import eventually

pytestmark = pytest.mark.postgres


async def running(
    world: World, price: int = 100_000, credit: int = 500_000, **kw: object
) -> tuple[str, dict[str, object]]:
    """A learner confirmed on a session that started yesterday."""
    account = await world.account(credit=credit)
    course = await world.course("p1", price=price, starts_in=-1, **kw)  # type: ignore[arg-type]
    e = await world.enrolled("p1", account, course)
    assert e["status"] == "confirmed", e
    return account, e


@pytest.mark.parametrize(
    "rate, paid",
    [
        (0, 25_000),
        (10, 25_000),
        (25, 25_000),
        (50, 50_000),
        (79, 79_000),
        (80, 100_000),
        (100, 100_000),
    ],
)
async def test_completion_bands_capture_and_release_the_rest(
    world: World, rate: int, paid: int
) -> None:
    account, e = await running(world)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=rate)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "approved" and r.json()["amount"] == paid
    claim = await world.captured(r.json()["claim_id"])
    assert claim["captured"] == paid
    b = await world.balance(account)
    assert b["spent_total"] == paid and b["reserved"] == 0
    assert b["available"] == 500_000 - paid
    enrolment = await world.enrolment(str(e["enrolment_id"]))
    assert enrolment["status"] == "completed" and enrolment["captured"] == paid
    assert enrolment["released"] == 100_000 - paid


async def test_a_claim_never_takes_more_than_was_reserved(world: World) -> None:
    account = await world.account(credit=60_000, employment_status="employed")
    course = await world.course("p1", price=100_000, starts_in=-1)
    e = await world.enrolled("p1", account, course, accept_co_payment=True)
    assert e["covered"] == 60_000
    r = await world.claim("p1", e["enrolment_id"], rate=100)
    assert r.json()["amount"] == 60_000
    await world.captured(r.json()["claim_id"])
    assert (await world.balance(account))["available"] == 0


async def test_a_certified_completion_asks_the_catalogue_for_a_credential(world: World) -> None:
    _, e = await running(world)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=95, certified=True, grade="B")
    await world.captured(r.json()["claim_id"])
    types = await world.outbox_types()
    assert types.count("ila.payments.CompletionCertified.v1") == 1
    assert "ila.payments.ClaimApproved.v1" in types and "ila.payments.CaptureRequested.v1" in types


async def test_rejections_with_their_reasons(world: World) -> None:
    _, e = await running(world)
    enrolment_id = str(e["enrolment_id"])
    first = await world.claim("p1", enrolment_id, rate=100)
    await world.captured(first.json()["claim_id"])
    reasons = {}
    reasons["duplicate"] = await world.claim("p1", enrolment_id, rate=100)
    await world.register_provider("p2")
    reasons["another"] = await world.claim("p2", enrolment_id, rate=100)
    reasons["unknown"] = await world.claim("p1", str(uuid.uuid4()), rate=100)
    # not confirmed yet
    account = await world.account(credit=500_000)
    course = await world.course("p1", starts_in=-1)
    pending = (await world.propose("p1", account, course)).json()["enrolment_id"]
    reasons["pending"] = await world.claim("p1", pending, rate=100)
    # cancelled
    _, cancelled = await running(world)
    r = await world.c.post(
        f"/v1/enrolments/{cancelled['enrolment_id']}/cancel",
        headers=world.provider("p1"),
        json={"reason": "course cancelled"},
    )
    assert r.status_code == 202, r.text
    reasons["cancelled"] = await world.claim("p1", str(cancelled["enrolment_id"]), rate=100)
    # too early: the session has not started
    future = await world.course("p1", starts_in=10)
    early = await world.enrolled("p1", await world.account(credit=500_000), future)
    reasons["early"] = await world.claim("p1", early["enrolment_id"], rate=100)
    # too late: the claim window closed
    _, late = await running(world, days=5)
    world.clock.advance(timedelta(days=5 + 91))
    reasons["late"] = await world.claim("p1", str(late["enrolment_id"]), rate=100)
    expected = {
        "duplicate": "duplicate_claim",
        "another": "enrolment_of_another_provider",
        "unknown": "enrolment_not_found",
        "pending": "enrolment_not_confirmed",
        "cancelled": "enrolment_cancelled",
        "early": "outside_claim_window",
        "late": "outside_claim_window",
    }
    for case, reason in expected.items():
        r = reasons[case]
        assert r.status_code == 202, (case, r.text)
        assert r.json()["status"] == "rejected" and r.json()["reason"] == reason, case
        assert r.json()["amount"] == 0
    assert (await world.claim_status(first.json()["claim_id"]))["captured"] == 100_000
    assert (await world.enrolment(str(late["enrolment_id"])))["captured"] == 0


async def test_bad_claims_are_refused_and_change_nothing(world: World) -> None:
    _, e = await running(world)
    for evidence in (
        {"completion_rate": 101, "completed_on": "2030-01-01"},
        {"completion_rate": -1, "completed_on": "2030-01-01"},
        {"completion_rate": "50", "completed_on": "2030-01-01"},
        {"completed_on": "2030-01-01"},
        {"completion_rate": 50, "completed_on": None},
        {"completion_rate": 50, "completed_on": "2000-01-01"},
        {
            "completion_rate": 50,
            "completed_on": "2030-01-01",
            "documents": [{"title": "x", "sha256": "nothex"}],
        },
    ):
        r = await world.claim("p1", str(e["enrolment_id"]), rate=None, **evidence)
        assert r.status_code == 422, (evidence, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await world.c.get("/v1/claims", headers=world.agency)
    assert r.json()["items"] == []


async def test_the_start_milestone_of_a_long_course_pays_an_advance(world: World) -> None:
    account, e = await running(world, price=200_000, days=120)
    enrolment_id = str(e["enrolment_id"])
    r = await world.claim("p1", enrolment_id, milestone="start")
    assert r.status_code == 202 and r.json()["status"] == "approved", r.text
    assert r.json()["amount"] == 60_000  # 30 % of the price
    await world.captured(r.json()["claim_id"])

    async def balance_reserved() -> dict[str, object]:
        return await world.balance(account)

    b = await eventually(balance_reserved, lambda b: b["reserved"] == 140_000)
    assert b["spent_total"] == 60_000
    # completion at 60 %: 120 000 in all, 60 000 more; the rest goes back to the learner
    done = await world.claim("p1", enrolment_id, rate=60)
    assert done.json()["status"] == "approved" and done.json()["amount"] == 60_000
    await world.captured(done.json()["claim_id"])
    b = await world.balance(account)
    assert b["spent_total"] == 120_000 and b["reserved"] == 0 and b["available"] == 380_000
    again = await world.claim("p1", enrolment_id, milestone="start")
    assert again.json()["reason"] == "duplicate_claim"


async def test_a_short_course_has_no_start_milestone(world: World) -> None:
    _, e = await running(world, days=20)
    r = await world.claim("p1", str(e["enrolment_id"]), milestone="start")
    assert r.json()["status"] == "rejected" and r.json()["reason"] == "no_start_milestone"


async def test_a_suspended_provider_is_held_until_an_agency_releases(world: World) -> None:
    _, e = await running(world)
    _, e2 = await running(world)
    approved = await world.claim("p1", str(e["enrolment_id"]), rate=100)
    await world.captured(approved.json()["claim_id"])
    await world.provider_status("p1", "suspended")
    held = await world.claim_status(approved.json()["claim_id"])
    assert held["status"] == "held" and held["hold_reason"] == "provider_suspended"
    # a new claim is held too, and nothing is captured for it yet
    r = await world.claim("p1", str(e2["enrolment_id"]), rate=100)
    assert r.json()["status"] == "held"
    assert (await world.enrolment(str(e2["enrolment_id"])))["captured"] == 0
    # no new enrolments for a suspended provider
    course = await world.course("p1", register=False)
    refused = await world.propose("p1", await world.account(credit=1), course)
    assert refused.status_code == 403 and refused.json()["code"] == "provider_not_eligible"
    # held claims are not paid
    assert (await world.run_payouts())["payouts"] == []
    # a provider cannot release its own hold; an agency can
    path = f"/v1/claims/{r.json()['claim_id']}/release"
    assert (await world.c.post(path, headers=world.provider("p1"))).status_code == 403
    for claim_id in (approved.json()["claim_id"], r.json()["claim_id"]):
        rel = await world.c.post(f"/v1/claims/{claim_id}/release", headers=world.agency)
        assert rel.status_code == 200, rel.text
        await world.captured(claim_id)
    run = await world.released_run()
    assert [p["amount"] for p in run["payouts"]] == [200_000]
