"""The payments scenarios of "Money safety", replayed through the HTTP API exactly as they
were reported: each is refused with a problem document, and afterwards claims, enrolments,
reservations, payouts, approvals and both outboxes are exactly as before."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.payments.config import PaymentsConfig
from shared.events.catalogue import SessionInfo
from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres


async def test_a_completion_claimed_an_hour_into_the_session_dated_170_days_ahead(
    world: World,
) -> None:
    """ "A provider claimed 100% completion, with a completion date 170 days in the future,
    for a session that had started an hour earlier. The claim was approved, captured and
    paid." """
    await world.register_provider("p1")
    now = world.clock.now()
    course_id, session_id = uuid.uuid4(), uuid.uuid4()
    approved = world.course_approved(
        "p1", course_id, session_id, price=100_000, starts_in=0, days=20, seats=5, isced_field="06"
    )
    started = now - timedelta(hours=1)
    session = SessionInfo(
        session_id=session_id, start=started, end=started + timedelta(days=20), seats=5
    )
    await world.deliver(approved.model_copy(update={"sessions": (session,)}))
    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, (str(course_id), str(session_id)))
    assert e["status"] == "confirmed"
    before = await world.payments_state()
    balance = await world.balance(account)

    claim = {
        "enrolment_id": e["enrolment_id"],
        "milestone": "completion",
        "evidence": {
            "completion_rate": 100,
            "started_on": str(started.date()),
            "completed_on": str(now.date() + timedelta(days=170)),
        },
    }
    headers = {**world.provider("p1"), "Idempotency-Key": "claim-170"}
    r = await world.c.post("/v1/claims", headers=headers, json=claim)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "date_in_future"
    assert r.json()["errors"][0]["field"] == "evidence.completed_on"
    # the same claim dated today: the session is not over
    claim["evidence"]["completed_on"] = str(now.date())  # type: ignore[index]
    r = await world.c.post(
        "/v1/claims", headers={**headers, "Idempotency-Key": "claim-today"}, json=claim
    )
    assert r.status_code == 422 and r.json()["code"] == "session_not_over", r.text
    # and without an Idempotency-Key it is not even looked at
    r = await world.c.post("/v1/claims", headers=world.provider("p1"), json=claim)
    assert r.status_code == 428

    assert await world.payments_state() == before
    assert await world.balance(account) == balance
    assert (await world.c.get("/v1/claims", headers=world.admin)).json()["items"] == []


@pytest.mark.parametrize("payments_config", [PaymentsConfig(velocity_per_hour=1)])
async def test_an_agency_acts_only_on_the_accounts_it_manages(world: World) -> None:
    """ "In payments every agency acts nationally: it reads every enrolment, claim and payout,
    releases any enrolment or claim hold (which pays a suspended provider)." """
    account = await world.account(credit=300_000)  # managed by pes-fr
    course = await world.course("p1", starts_in=-1)
    e = await world.enrolled("p1", account, course)
    world.session_over(e)
    claim = (await world.claim("p1", e["enrolment_id"], rate=100)).json()
    await world.payable(claim["claim_id"])
    await world.provider_status("p1", "suspended")
    assert (await world.claim_status(claim["claim_id"]))["status"] == "held"
    # an enrolment the velocity rule held (one per hour allowed in this scenario)
    held_course = await world.course("p2", seats=5)
    assert (await world.propose("p2", account, held_course)).status_code == 202
    proposed = (await world.propose("p2", await world.account(), held_course)).json()
    assert proposed["status"] == "held"
    before = await world.payments_state()

    b = world.agency_b
    missing = str(uuid.uuid4())
    for what, key in (("enrolments", e["enrolment_id"]), ("claims", claim["claim_id"])):
        theirs = await world.c.get(f"/v1/{what}/{key}", headers=b)
        nothing = await world.c.get(f"/v1/{what}/{missing}", headers=b)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json()["code"] == nothing.json()["code"] == f"{what[:-1]}_not_found"
        assert theirs.json()["detail"] == f"no {what[:-1]} {key}"
        assert set(theirs.json()) == set(nothing.json())
        listed = await world.c.get(f"/v1/{what}", headers=b)
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert (await world.c.get(f"/v1/{what}", headers=world.agency)).json()["items"]
    by_account = await world.c.get("/v1/enrolments", headers=b, params={"account_id": account})
    assert by_account.json()["items"] == []
    for path in (
        f"/v1/claims/{claim['claim_id']}/release",
        f"/v1/enrolments/{proposed['enrolment_id']}/release",
        f"/v1/enrolments/{proposed['enrolment_id']}/reject",
    ):
        r = await world.c.post(path, headers=b)
        assert r.status_code == 404, (path, r.text)
    assert await world.payments_state() == before

    # the managing agency only proposes; the claim stays held until finance approves
    r = await world.c.post(f"/v1/claims/{claim['claim_id']}/release", headers=world.agency)
    assert r.status_code == 202 and r.json()["status"] == "pending"
    assert (await world.claim_status(claim["claim_id"]))["status"] == "held"
    assert (await world.run_payouts())["payouts"] == []
    await world.approve_as_finance(r.json()["approval_id"])
    assert (await world.claim_status(claim["claim_id"]))["status"] == "captured"


async def test_another_providers_enrolment_answers_like_a_missing_one(world: World) -> None:
    """ "A provider claiming on another provider's enrolment gets `202 rejected:
    enrolment_of_another_provider`, while a random id gets `enrolment_not_found`: the answer
    tells whether an enrolment exists." """
    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    world.session_over(e)
    await world.register_provider("p2")
    before = await world.payments_state()
    missing = str(uuid.uuid4())
    theirs = await world.claim("p2", e["enrolment_id"], rate=100)
    nothing = await world.claim("p2", missing, rate=100)
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.headers["content-type"] == nothing.headers["content-type"]
    a, b = theirs.json(), nothing.json()
    assert a["code"] == b["code"] == "enrolment_not_found"
    assert a["detail"] == f"no enrolment {e['enrolment_id']}"
    assert b["detail"] == f"no enrolment {missing}"
    assert {k: v for k, v in a.items() if k not in ("detail",)} == {
        k: v for k, v in b.items() if k not in ("detail",)
    }
    assert await world.payments_state() == before
    assert (await world.balance(account))["spent_total"] == 0
