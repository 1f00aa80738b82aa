"""Who may see and do what: a provider only its own enrolments, claims and payouts; a learner
only their own enrolments and claims; agencies read those of the accounts they manage and run
payouts. (Agency scope, finance, qa and funder, and four eyes: ``test_scope.py``.)"""

from __future__ import annotations

import pytest

from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres


async def test_the_authorization_matrix(world: World) -> None:
    learner_a = await world.account(credit=300_000)
    learner_b = await world.account(credit=300_000)
    course = await world.course("pa", starts_in=-1)
    await world.register_provider("pb")
    e = await world.enrolled("pa", learner_a, course)
    eid = e["enrolment_id"]
    other = await world.enrolled("pa", learner_b, course)
    world.session_over(e)
    claim = (await world.claim("pa", eid, rate=100)).json()
    await world.payable(claim["claim_id"])
    run = await world.released_run()
    payout_id = run["payouts"][0]["payout_id"]

    pa, pb = world.provider("pa"), world.provider("pb")
    la, lb = world.learner(learner_a), world.learner(learner_b)
    agency, auditor, admin = world.agency, world.auditor, world.admin
    nobody: dict[str, str] = {}
    get_cases = [
        (
            f"/v1/enrolments/{eid}",
            {
                "pa": 200,
                "pb": 404,
                "la": 200,
                "lb": 404,
                "agency": 200,
                "auditor": 200,
                "nobody": 401,
            },
        ),
        (
            f"/v1/claims/{claim['claim_id']}",
            {
                "pa": 200,
                "pb": 404,
                "la": 200,
                "lb": 404,
                "agency": 200,
                "auditor": 200,
                "nobody": 401,
            },
        ),
        (
            f"/v1/payouts/{payout_id}",
            {"pa": 200, "pb": 404, "la": 403, "agency": 200, "auditor": 200, "nobody": 401},
        ),
        (
            f"/v1/payouts/{payout_id}/sepa",
            {"pa": 200, "pb": 404, "la": 403, "agency": 200, "nobody": 401},
        ),
        (
            f"/v1/payouts/runs/{run['run_id']}",
            {"pa": 403, "la": 403, "agency": 200, "admin": 200, "nobody": 401},
        ),
        ("/v1/payees/pa", {"pa": 200, "pb": 404, "la": 403, "agency": 200, "nobody": 401}),
    ]
    who = {
        "pa": pa,
        "pb": pb,
        "la": la,
        "lb": lb,
        "agency": agency,
        "auditor": auditor,
        "admin": admin,
        "nobody": nobody,
    }
    for path, expected in get_cases:
        for name, status in expected.items():
            r = await world.c.get(path, headers=who[name])
            assert r.status_code == status, (path, name, r.status_code, r.text)

    # lists are narrowed to what the caller may see
    async def listed(path: str, headers: dict[str, str], **params: str) -> list[str]:
        r = await world.c.get(path, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [i.get("enrolment_id") or i.get("payout_id") for i in r.json()["items"]]

    oid = other["enrolment_id"]
    assert await listed("/v1/enrolments", pa) == [oid, eid]
    assert await listed("/v1/enrolments", pb) == []
    assert await listed("/v1/enrolments", la) == [eid]
    assert await listed("/v1/enrolments", lb) == [oid]
    assert await listed("/v1/enrolments", agency) == [oid, eid]
    assert await listed("/v1/claims", pb) == []
    assert await listed("/v1/payouts", pb) == []
    assert await listed("/v1/payouts", pa) == [payout_id]
    assert (
        await world.c.get("/v1/enrolments", headers=pb, params={"provider_id": "pa"})
    ).status_code == 403
    assert (
        await world.c.get("/v1/enrolments", headers=lb, params={"account_id": learner_a})
    ).status_code == 403
    assert (await world.c.get("/v1/payouts", headers=la)).status_code == 403

    # actions by the wrong role or on someone else's resource
    body = {"account_id": learner_b, "course_id": course[0], "session_id": course[1]}
    posts = [
        ("/v1/enrolments", body, {"la": 403, "agency": 403, "nobody": 401}),
        (
            f"/v1/enrolments/{other['enrolment_id']}/confirm",
            {},
            {"pa": 403, "agency": 403, "la": 404, "nobody": 401},
        ),
        (f"/v1/enrolments/{other['enrolment_id']}/refuse", None, {"pa": 403, "la": 404}),
        (
            f"/v1/enrolments/{other['enrolment_id']}/cancel",
            {},
            {"pb": 404, "la": 404, "agency": 403},
        ),
        (
            "/v1/claims",
            {
                "enrolment_id": other["enrolment_id"],
                "milestone": "completion",
                "evidence": {
                    "started_on": "2020-01-01",
                    "completion_rate": 100,
                    "completed_on": "2020-02-01",
                },
            },
            {"la": 403, "agency": 403, "nobody": 401},
        ),
        (f"/v1/claims/{claim['claim_id']}/release", None, {"pa": 403, "la": 403}),
        ("/v1/payouts/runs", {}, {"pa": 403, "la": 403, "auditor": 403, "nobody": 401}),
        (f"/v1/payouts/{payout_id}/settle", None, {"pa": 403, "auditor": 403}),
        (f"/v1/enrolments/{other['enrolment_id']}/release", None, {"pa": 403, "la": 403}),
    ]
    for path, payload, expected in posts:
        for name, status in expected.items():
            r = await world.c.post(path, headers=who[name], json=payload)
            assert r.status_code == status, (path, name, r.status_code, r.text)
    # another provider's bank details are not found (payees: see test_payouts_authorization)
    r = await world.c.put(
        "/v1/payees/pa", headers=pb, json={"name": "x", "iban": "DE89370400440532013000"}
    )
    assert r.status_code == 404
    # a provider's claim on another's enrolment answers as if it did not exist, and pays nothing
    r = await world.claim("pb", other["enrolment_id"], rate=100)
    assert r.status_code == 404 and r.json()["code"] == "enrolment_not_found"
    assert (await world.enrolment(other["enrolment_id"]))["status"] == "confirmed"
    assert (await world.balance(learner_b))["spent_total"] == 0
