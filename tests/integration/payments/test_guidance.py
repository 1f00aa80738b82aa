"""Guidance outcomes: the provider of a guidance enrolment records a plan; later enrolments
of the same learner name it (another learner's enrolment cannot); the plan is read with the
enrolments that followed it, by whom the rules allow."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres

GUIDE = "prov-guide"
TRAINER = "prov-train"
PLAN = {
    "courses": [],
    "skills": [
        {
            "uri": "http://data.europa.eu/esco/skill/ccd0a1d9-afda-43d9-b901-96344886e14d",
            "label": "use spreadsheets software",
        },
        {"label": "plan a career change"},
    ],
    "note": "Learner wants to move into data work within a year.",
}


async def guidance_enrolment(world: World, account_id: str) -> dict[str, object]:
    course = await world.course(GUIDE, price=30_000, starts_in=-1, days=2, kind="guidance")
    return await world.enrolled(GUIDE, account_id, course)


async def outbox_of(world: World, name: str) -> list[dict[str, object]]:
    async with world.rt.sessions() as session:
        rows = await session.execute(
            text("SELECT body FROM payments.outbox WHERE type = :t ORDER BY id"),
            {"t": f"ila.payments.{name}.v1"},
        )
        return [json.loads(bytes(r.body))["data"] for r in rows]


async def test_a_plan_is_followed_by_two_enrolments_of_its_learner(world: World) -> None:
    learner = await world.account(credit=500_000)
    other = await world.account(credit=500_000)
    enrolment = await guidance_enrolment(world, learner)
    eid = enrolment["enrolment_id"]
    training = await world.course(TRAINER, price=100_000)
    plan_body = {**PLAN, "courses": [training[0]]}

    # someone else's provider: the 404 of a missing enrolment; nothing recorded
    r = await world.c.post(
        f"/v1/enrolments/{eid}/guidance-outcome", headers=world.provider(TRAINER), json=plan_body
    )
    assert r.status_code == 404 and r.json()["code"] == "enrolment_not_found", r.text
    r = await world.c.post(
        f"/v1/enrolments/{eid}/guidance-outcome", headers=world.learner(learner), json=plan_body
    )
    assert r.status_code == 403, r.text
    r = await world.c.post(
        f"/v1/enrolments/{eid}/guidance-outcome",
        headers=world.provider(GUIDE),
        json={"courses": [], "skills": []},
    )
    assert r.status_code == 422 and r.json()["code"] == "empty_guidance_plan", r.text
    assert await outbox_of(world, "GuidancePlanRecorded") == []

    r = await world.c.post(
        f"/v1/enrolments/{eid}/guidance-outcome", headers=world.provider(GUIDE), json=plan_body
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    plan_id = plan["plan_id"]
    assert r.headers["location"] == f"/v1/guidance-plans/{plan_id}"
    assert plan["account_id"] == learner and plan["provider_id"] == GUIDE
    assert plan["courses"] == [training[0]] and len(plan["skills"]) == 2
    assert plan["enrolments"] == []
    # recorded once: asking again answers the same plan
    again = await world.c.post(
        f"/v1/enrolments/{eid}/guidance-outcome", headers=world.provider(GUIDE), json=PLAN
    )
    assert again.status_code == 200 and again.json()["plan_id"] == plan_id

    # the event: ids and numbers, never the labels or the note
    [recorded] = await outbox_of(world, "GuidancePlanRecorded")
    assert recorded["plan_id"] == plan_id and recorded["skills"] == 2
    assert recorded["course_ids"] == [training[0]]
    assert "spreadsheets" not in str(recorded) and "career" not in str(recorded)

    # two later enrolments of the learner name the plan
    first = await world.propose(TRAINER, learner, training, guidance_plan_id=plan_id)
    assert first.status_code == 202, first.text
    assert first.json()["guidance_plan_id"] == plan_id
    second_course = await world.course(TRAINER, price=50_000)
    second = await world.propose(TRAINER, learner, second_course, guidance_plan_id=plan_id)
    assert second.status_code == 202, second.text

    # another learner's enrolment cannot name it (nor an unknown plan): nothing is proposed
    before = await world.payments_state()
    for named in (plan_id, str(uuid.uuid4())):
        r = await world.propose(TRAINER, other, training, guidance_plan_id=named)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "guidance_plan_not_found"
    assert await world.payments_state() == before

    # the plan with the enrolments that followed it
    r = await world.c.get(f"/v1/guidance-plans/{plan_id}", headers=world.learner(learner))
    assert r.status_code == 200, r.text
    linked = r.json()["enrolments"]
    assert [e["enrolment_id"] for e in linked] == [
        first.json()["enrolment_id"],
        second.json()["enrolment_id"],
    ]
    assert {e["course_id"] for e in linked} == {training[0], second_course[0]}
    followed = await outbox_of(world, "GuidancePlanFollowed")
    assert [f["enrolment_id"] for f in followed] == [e["enrolment_id"] for e in linked]

    # who reads it: its learner, its provider, the learner's agency, national roles
    for headers in (world.provider(GUIDE), world.agency, world.auditor, world.admin):
        r = await world.c.get(f"/v1/guidance-plans/{plan_id}", headers=headers)
        assert r.status_code == 200, r.text
    for headers in (world.learner(other), world.provider(TRAINER), world.agency_b):
        r = await world.c.get(f"/v1/guidance-plans/{plan_id}", headers=headers)
        assert r.status_code == 404 and r.json()["code"] == "guidance_plan_not_found", r.text

    # the statistics count it in the month it was recorded
    r = await world.c.get("/v1/payments/statistics", headers=world.auditor)
    assert r.status_code == 200, r.text
    assert r.json()["totals"]["guidance_plans"] == 1
    month = plan["recorded_at"][:7]
    [row] = [m for m in r.json()["by_month"] if m["month"] == month]
    assert row["guidance_plans"] == 1
    r = await world.c.get("/v1/payments/statistics", headers=world.agency_b)
    assert r.json()["totals"]["guidance_plans"] == 0


async def test_only_a_guidance_enrolment_under_way_gets_a_plan(world: World) -> None:
    learner = await world.account(credit=500_000)
    training = await world.course(GUIDE, price=100_000)
    enrolment = await world.enrolled(GUIDE, learner, training)
    r = await world.c.post(
        f"/v1/enrolments/{enrolment['enrolment_id']}/guidance-outcome",
        headers=world.provider(GUIDE),
        json=PLAN,
    )
    assert r.status_code == 409 and r.json()["code"] == "not_a_guidance_enrolment", r.text

    course = await world.course(GUIDE, price=30_000, kind="guidance")
    proposed = await world.propose(GUIDE, learner, course)
    assert proposed.status_code == 202, proposed.text
    r = await world.c.post(
        f"/v1/enrolments/{proposed.json()['enrolment_id']}/guidance-outcome",
        headers=world.provider(GUIDE),
        json=PLAN,
    )
    assert r.status_code == 409 and r.json()["code"] == "enrolment_not_under_way", r.text
    r = await world.c.post(
        f"/v1/enrolments/{uuid.uuid4()}/guidance-outcome",
        headers=world.provider(GUIDE),
        json=PLAN,
    )
    assert r.status_code == 404, r.text
