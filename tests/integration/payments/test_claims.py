"""Claims: bands, the reservation cap, every rejection, capture by the ledger, the
certified completion, the start milestone, and fraud holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from services.payments.deps import Components
from services.payments.domain.enrolments import Enrolment
from services.payments.store import claims as claim_store
from services.payments.store import rows
from shared.events.catalogue import SessionInfo
from shared.service import components_of
from tests.integration.support.payments import World, running
from tests.support import eventually

pytestmark = pytest.mark.postgres


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
    world.session_over(e)
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
    # another provider's enrolment answers exactly like one that does not exist
    await world.register_provider("p2")
    another = await world.claim("p2", enrolment_id, rate=100)
    missing = str(uuid.uuid4())
    unknown = await world.claim("p1", missing, rate=100)
    assert another.status_code == unknown.status_code == 404
    assert another.json()["code"] == unknown.json()["code"] == "enrolment_not_found"
    assert another.json()["detail"] == f"no enrolment {enrolment_id}"
    assert unknown.json()["detail"] == f"no enrolment {missing}"
    # not confirmed yet (a long session's start milestone, claimable before its end)
    account = await world.account(credit=500_000)
    course = await world.course("p1", starts_in=-1, days=120)
    pending = (await world.propose("p1", account, course)).json()["enrolment_id"]
    reasons["pending"] = await world.claim("p1", pending, milestone="start")
    # cancelled
    _, cancelled = await running(world)
    r = await world.c.post(
        f"/v1/enrolments/{cancelled['enrolment_id']}/cancel",
        headers=world.provider("p1"),
        json={"reason_code": "course_cancelled"},
    )
    assert r.status_code == 202, r.text
    reasons["cancelled"] = await world.claim("p1", str(cancelled["enrolment_id"]), rate=100)
    # too early: the session has not started (its dates would be in the future)
    future = await world.course("p1", starts_in=10)
    early = await world.enrolled("p1", await world.account(credit=500_000), future)
    too_early = await world.claim("p1", early["enrolment_id"], milestone="start")
    assert too_early.status_code == 422 and too_early.json()["code"] == "date_in_future"
    # too late: the claim window closed
    _, late = await running(world, days=5)
    world.clock.advance(timedelta(days=5 + 91))
    reasons["late"] = await world.claim("p1", str(late["enrolment_id"]), rate=100)
    expected = {
        "duplicate": "duplicate_claim",
        "pending": "enrolment_not_confirmed",
        "cancelled": "enrolment_cancelled",
        "late": "outside_claim_window",
    }
    for case, reason in expected.items():
        r = reasons[case]
        assert r.status_code == 202, (case, r.text)
        assert r.json()["status"] == "rejected" and r.json()["reason"] == reason, case
        assert r.json()["amount"] == 0
    assert (await world.claim_status(first.json()["claim_id"]))["captured"] == 100_000
    assert (await world.enrolment(str(late["enrolment_id"])))["captured"] == 0
    assert (await world.enrolment(str(early["enrolment_id"])))["captured"] == 0


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
    # evidence dates outside the session or in the future, attendance beyond the session
    today = world.clock.now().date()  # the day after the session's last day
    starts_on = date.fromisoformat(str(e["starts_on"]))
    for evidence, code, field in (
        ({"completed_on": str(today + timedelta(days=1))}, "date_in_future", "completed_on"),
        ({"started_on": str(starts_on - timedelta(days=1))}, "date_outside_session", "started_on"),
        ({"completed_on": str(today)}, "date_outside_session", "completed_on"),
        ({"attendance_hours": 10_000}, "attendance_exceeds_session", "attendance_hours"),
    ):
        r = await world.claim("p1", str(e["enrolment_id"]), **evidence)
        assert r.status_code == 422, (evidence, r.text)
        assert r.json()["code"] == code, (evidence, r.text)
        assert r.json()["errors"][0]["field"] == f"evidence.{field}", r.text
    r = await world.claim("p1", str(e["enrolment_id"]), key=None)
    assert r.status_code == 428 and r.headers["content-type"] == "application/problem+json"
    r = await world.c.get("/v1/claims", headers=world.agency)
    assert r.json()["items"] == []
    assert (await world.enrolment(str(e["enrolment_id"])))["status"] == "confirmed"


async def test_the_start_milestone_of_a_long_course_pays_an_advance(world: World) -> None:
    account, e = await running(world, price=200_000, days=120, over=False)
    enrolment_id = str(e["enrolment_id"])
    r = await world.claim("p1", enrolment_id, milestone="start")
    assert r.status_code == 202 and r.json()["status"] == "approved", r.text
    assert r.json()["amount"] == 60_000  # 30 % of the price
    await world.captured(r.json()["claim_id"])

    async def balance_reserved() -> dict[str, object]:
        return await world.balance(account)

    b = await eventually(balance_reserved, lambda b: b["reserved"] == 140_000)
    assert b["spent_total"] == 60_000
    # the completion waits for the session's end
    early = await world.claim("p1", enrolment_id, rate=60)
    assert early.status_code == 422 and early.json()["code"] == "session_not_over"
    world.session_over(e)
    # completion at 60 %: 120 000 in all, 60 000 more; the rest goes back to the learner
    done = await world.claim("p1", enrolment_id, rate=60)
    assert done.json()["status"] == "approved" and done.json()["amount"] == 60_000
    await world.captured(done.json()["claim_id"])
    b = await world.balance(account)
    assert b["spent_total"] == 120_000 and b["reserved"] == 0 and b["available"] == 380_000
    # both were parts of the one reservation: nothing reserved again under another name
    async with world.rt.sessions() as session:
        held = await session.execute(
            text(
                "SELECT status, amount, captured, released FROM payments.reservations "
                "WHERE enrolment_id = :e"
            ),
            {"e": enrolment_id},
        )
        assert [tuple(r) for r in held] == [("captured", 200_000, 120_000, 80_000)]
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
    # held claims are not paid, even attested
    await world.attest(approved.json()["claim_id"])
    assert (await world.run_payouts())["payouts"] == []
    # a provider cannot release its own hold; an agency proposes, finance approves
    path = f"/v1/claims/{r.json()['claim_id']}/release"
    assert (await world.c.post(path, headers=world.provider("p1"))).status_code == 403
    for claim_id in (approved.json()["claim_id"], r.json()["claim_id"]):
        rel = await world.c.post(f"/v1/claims/{claim_id}/release", headers=world.agency)
        assert rel.status_code == 202, rel.text
        assert rel.json()["action"] == "claim_release"
        assert rel.json()["subject"] == f"claim:{claim_id}"
        assert (await world.claim_status(claim_id))["status"] == "held"  # not yet
        await world.approve_as_finance(rel.json()["approval_id"])
        await world.captured(claim_id)
    await world.attest(r.json()["claim_id"])
    run = await world.released_run()
    assert [p["amount"] for p in run["payouts"]] == [200_000]


async def test_a_completion_is_claimed_from_the_moment_the_session_ends(world: World) -> None:
    await world.register_provider("p1")
    now = world.clock.now()
    course_id, session_id = uuid.uuid4(), uuid.uuid4()
    event = world.course_approved(
        "p1", course_id, session_id, price=100_000, starts_in=0, days=1, seats=5, isced_field="06"
    )
    start = now - timedelta(hours=6)
    session = SessionInfo(session_id=session_id, start=start, end=now + timedelta(hours=2), seats=5)
    await world.deliver(event.model_copy(update={"sessions": (session,)}))
    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, (str(course_id), str(session_id)))
    assert e["ends_at"] is not None
    evidence = {"started_on": str(start.date()), "completed_on": str(session.end.date())}
    if session.end.date() > now.date():  # the session ends after midnight: dated today
        evidence["completed_on"] = str(now.date())
    early = await world.claim("p1", e["enrolment_id"], **evidence)
    assert early.status_code == 422 and early.json()["code"] == "session_not_over", early.text
    world.clock.advance(timedelta(hours=2))
    r = await world.claim("p1", e["enrolment_id"], **evidence)
    assert r.status_code == 202 and r.json()["status"] == "approved", r.text


async def test_claims_that_arrive_together_are_answered_each_alone(world: World) -> None:
    """Claims posted together are decided in one transaction (group commit), each answered
    alone: a refusal answers only its caller, a key sent twice gets one claim and the same
    answer, and a second claim of an enrolment waits for the next batch, where it sees the
    first (decided together, neither would see the other: the unique index on an
    enrolment's milestone would then fail the batch, run again one claim at a time)."""
    committer = components_of(world.app.state.runtimes["payments"], Components).claims
    committer.window = 1.0  # wide enough that the claims below share a batch
    first_account, first = await running(world)
    second_account, second = await running(world)
    one, two = str(first["enrolment_id"]), str(second["enrolment_id"])
    batches = committer.batches
    answers = await asyncio.gather(
        world.claim("p1", one, rate=100, key="a"),
        world.claim("p1", one, rate=100, key="b"),  # the same enrolment: the next batch
        world.claim("p2", two, rate=100, key="c"),  # another provider's enrolment: 404
        world.claim("p1", two, rate=50, key="d"),
        world.claim("p1", two, rate=50, key="d"),  # the same request twice: one claim
        world.claim("p1", str(uuid.uuid4()), rate=100, key="e"),  # no such enrolment
    )
    assert committer.batches - batches == 3  # three requests name the enrolment `two`
    assert [r.status_code for r in answers] == [202, 202, 404, 202, 202, 404]
    assert answers[2].json()["code"] == answers[5].json()["code"] == "enrolment_not_found"
    # whichever came first is approved, the other sees it
    approved, later = sorted((answers[0].json(), answers[1].json()), key=lambda c: c["status"])
    assert (approved["status"], later["status"]) == ("approved", "rejected")
    assert later["reason"] == "duplicate_claim"
    assert answers[3].json() == answers[4].json()
    assert {r.headers.get("Idempotent-Replayed") for r in answers[3:5]} == {"true", None}
    await world.captured(approved["claim_id"])
    await world.captured(answers[3].json()["claim_id"])
    assert (await world.balance(first_account))["spent_total"] == 100_000
    assert (await world.balance(second_account))["spent_total"] == 50_000
    for enrolment_id, claims in ((one, 2), (two, 1)):
        listed = await world.c.get(
            "/v1/claims", params={"enrolment_id": enrolment_id}, headers=world.admin
        )
        assert len(listed.json()["items"]) == claims
    # a refused request changed nothing, its key included: used again for another
    # request, it is that request's (a kept key would answer 422)
    again = await world.claim("p2", one, rate=100, key="c")
    assert again.status_code == 404, again.text


async def test_a_batch_reads_what_each_claim_is_decided_on_as_one_at_a_time(
    world: World,
) -> None:
    """What a batch of claims is decided on, read in one statement, is each claim's own:
    its enrolment's reservation and earlier claims, its provider's standing, whatever the
    order the batch names them in (the reservations are locked in key order)."""
    rt = world.app.state.runtimes["payments"]
    _, first = await running(world)
    _, second = await running(world)
    r = await world.claim("p1", str(second["enrolment_id"]), rate=50)
    assert r.status_code == 202, r.text
    # settled first: the ledger's answer would otherwise move the claim from approved to
    # captured between the single reads and the batch's
    await world.captured(r.json()["claim_id"])
    today = date.today()
    async with rt.uow() as session:
        enrolments = await rows.get_many(
            session,
            Enrolment,
            {uuid.UUID(str(first["enrolment_id"])), uuid.UUID(str(second["enrolment_id"]))},
        )
        one, two = (enrolments[uuid.UUID(str(e["enrolment_id"]))] for e in (first, second))
        asks = [
            (two.reservation_id, two.enrolment_id, "p1"),
            (None, one.enrolment_id, "p2"),
            (one.reservation_id, one.enrolment_id, "p1"),
        ]
        single = [
            await claim_store.submission_inputs(
                session, reservation_id=r, enrolment_id=e, provider_id=p, today=today
            )
            for r, e, p in asks
        ]
        for ordered in (asks, asks[::-1]):
            together = await claim_store.submission_inputs_many(session, ordered, today)
            expected = single if ordered is asks else single[::-1]
            assert together == expected
    (res_two, earlier_two, _), (none, earlier_none, _), (res_one, earlier_one, _) = single
    assert (res_one.enrolment_id, res_two.enrolment_id, none) == (
        one.enrolment_id,
        two.enrolment_id,
        None,
    )
    assert (earlier_one, earlier_none, earlier_two) == ([], [], [("completion", "captured")])
