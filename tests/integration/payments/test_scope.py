"""Scope and four eyes over enrolments, claims and holds, for every endpoint and role: an
agency acts on the accounts it manages (anything else answers 404, like a missing one);
finance, auditor and admin read nationally; qa and funder have no business here; a hold is
released only by a proposal of the managing agency (or an admin) approved by finance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.payments.config import PaymentsConfig
from shared.pseudonym import pseudonymous_actor
from tests.integration.support.payments import World
from tests.support import bearer

pytestmark = pytest.mark.postgres

Who = dict[str, dict[str, str]]


def people(world: World) -> Who:
    s = world.settings
    return {
        "pa": world.provider("pa"),
        "pb": world.provider("pb"),
        "agency": world.agency,
        "agency_b": world.agency_b,
        "finance": world.finance,
        "auditor": world.auditor,
        "admin": world.admin,
        "qa": bearer(s, "qa", sub="qa-officer"),
        "funder": bearer(s, "funder", sub="region-idf", funder_id="region-idf"),
        "nobody": {},
    }


async def test_every_claim_and_enrolment_endpoint_for_every_role(world: World) -> None:
    learner_a = await world.account(credit=300_000)
    learner_b = await world.account(credit=300_000, agency=world.agency_b)
    course = await world.course("pa", starts_in=-1)
    await world.register_provider("pb")
    ea = (await world.enrolled("pa", learner_a, course))["enrolment_id"]
    eb = (await world.enrolled("pa", learner_b, course))["enrolment_id"]
    world.session_over(await world.enrolment(ea))
    ca = (await world.claim("pa", ea, rate=100)).json()["claim_id"]
    cb = (await world.claim("pa", eb, rate=100)).json()["claim_id"]
    await world.captured(ca)
    await world.captured(cb)
    who = {**people(world), "la": world.learner(learner_a), "lb": world.learner(learner_b)}

    reads = {"pa": 200, "pb": 404, "la": 200, "lb": 404, "agency": 200, "agency_b": 404}
    national = {"finance": 200, "auditor": 200, "admin": 200, "qa": 403, "funder": 403}
    for path in (f"/v1/enrolments/{ea}", f"/v1/claims/{ca}"):
        for name, status in {**reads, **national, "nobody": 401}.items():
            r = await world.c.get(path, headers=who[name])
            assert r.status_code == status, (path, name, r.text)
    for path in (f"/v1/enrolments/{eb}", f"/v1/claims/{cb}"):
        for name, status in {"agency": 404, "agency_b": 200, "lb": 200, "la": 404}.items():
            r = await world.c.get(path, headers=who[name])
            assert r.status_code == status, (path, name, r.text)

    async def listed(what: str, name: str, **params: str) -> set[str] | int:
        r = await world.c.get(f"/v1/{what}", headers=who[name], params=params)
        if r.status_code != 200:
            return r.status_code
        return {i["enrolment_id"] for i in r.json()["items"]}

    lists: dict[str, set[str] | int] = {
        "pa": {ea, eb},
        "pb": set(),
        "la": {ea},
        "lb": {eb},
        "agency": {ea},
        "agency_b": {eb},
        "finance": {ea, eb},
        "auditor": {ea, eb},
        "admin": {ea, eb},
        "qa": 403,
        "funder": 403,
        "nobody": 401,
    }
    for what in ("enrolments", "claims"):
        for name, expected in lists.items():
            assert await listed(what, name) == expected, (what, name)
    # a filter never widens the scope
    assert await listed("enrolments", "agency", account_id=learner_b) == set()
    assert await listed("claims", "agency_b", enrolment_id=ea) == set()
    assert await listed("claims", "la", enrolment_id=eb) == set()
    assert await listed("enrolments", "la", account_id=learner_b) == 403

    before = await world.payments_state()
    evidence = {"started_on": "2020-01-01", "completion_rate": 100, "completed_on": "2020-01-02"}
    claim_body = {"enrolment_id": ea, "milestone": "completion", "evidence": evidence}
    proposal_body = {"account_id": learner_a, "course_id": course[0], "session_id": course[1]}
    no_business = {"finance": 403, "qa": 403, "funder": 403, "nobody": 401}
    posts: list[tuple[str, Any, dict[str, int]]] = [
        (
            "/v1/enrolments",
            proposal_body,
            {"la": 403, "agency": 403, "auditor": 403, "admin": 403, **no_business},
        ),
        (f"/v1/enrolments/{ea}/confirm", {}, {"pa": 403, "agency": 403, "lb": 404, **no_business}),
        (f"/v1/enrolments/{ea}/refuse", None, {"pa": 403, "lb": 404, **no_business}),
        (
            f"/v1/enrolments/{ea}/cancel",
            {},
            {"pb": 404, "lb": 404, "agency": 403, "admin": 403, **no_business},
        ),
        (
            f"/v1/enrolments/{ea}/release",
            None,
            {"pa": 403, "la": 403, "auditor": 403, "agency_b": 404, "agency": 409, **no_business},
        ),
        (
            f"/v1/enrolments/{ea}/reject",
            None,
            {"pa": 403, "la": 403, "auditor": 403, "agency_b": 404, "agency": 409, **no_business},
        ),
        (
            "/v1/claims",
            claim_body,
            {"pb": 404, "la": 403, "agency": 403, "auditor": 403, "admin": 403, **no_business},
        ),
        (f"/v1/claims/{ca}/attest", None, {"pa": 403, "agency": 403, "lb": 404, **no_business}),
        (
            f"/v1/claims/{ca}/contest",
            {"reason_code": "did_not_attend"},
            {"pa": 403, "agency": 403, "admin": 403, "lb": 404, **no_business},
        ),
        (
            f"/v1/claims/{ca}/release",
            None,
            {"pa": 403, "la": 403, "auditor": 403, "agency_b": 404, "agency": 409, **no_business},
        ),
    ]
    for path, body, expected in posts:
        for name, status in expected.items():
            headers = {**who[name], "Idempotency-Key": f"{path}-{name}"}
            r = await world.c.post(path, headers=headers, json=body)
            assert r.status_code == status, (path, name, r.status_code, r.text)
            if status == 409:
                assert r.json()["code"] == "not_held", r.text
    assert await world.payments_state() == before


async def test_releasing_a_held_claim_needs_four_eyes(world: World) -> None:
    account = await world.account(credit=300_000)
    e = await world.enrolled("pa", account, await world.course("pa", starts_in=-1))
    world.session_over(e)
    claim_id = (await world.claim("pa", e["enrolment_id"], rate=100)).json()["claim_id"]
    await world.captured(claim_id)
    r = await world.c.post(
        f"/v1/claims/{claim_id}/contest",
        headers=world.learner(account),
        json={"reason_code": "wrong_dates"},
    )
    assert r.status_code == 200 and r.json()["status"] == "held"
    who = people(world)
    path = f"/v1/claims/{claim_id}/release"
    assert (await world.c.post(path, headers=who["finance"])).status_code == 403
    assert (await world.c.post(path, headers=who["agency_b"])).status_code == 404

    r = await world.c.post(path, headers=world.agency)
    assert r.status_code == 202, r.text
    proposal = r.json()
    approval = f"/v1/payments/approvals/{proposal['approval_id']}"
    assert r.headers["location"] == approval
    assert proposal["action"] == "claim_release" and proposal["subject"] == f"claim:{claim_id}"
    proposer = pseudonymous_actor("agency:pes-fr-desk", world.settings.actor_pepper)
    assert proposal["status"] == "pending" and proposal["proposed_by"] == proposer
    # one open proposal per claim
    again = await world.c.post(path, headers=world.admin)
    assert again.status_code == 409 and again.json()["code"] == "proposal_pending"
    # the managing agency sees the proposal; another agency does not
    queue = await world.c.get(
        "/v1/payments/approvals", headers=world.agency, params={"status": "pending"}
    )
    assert [p["approval_id"] for p in queue.json()["items"]] == [proposal["approval_id"]]
    theirs = await world.c.get("/v1/payments/approvals", headers=world.agency_b)
    assert theirs.json()["items"] == []
    assert (await world.c.get(approval, headers=world.agency_b)).status_code == 404

    # the proposer cannot approve, even with an approver's role; nor can other roles
    same_person = bearer(world.settings, "finance", sub="pes-fr-desk")
    r = await world.c.post(f"{approval}/approve", headers=same_person)
    assert r.status_code == 403 and r.json()["code"] == "same_person"
    for name in ("agency", "agency_b", "admin", "auditor", "qa", "funder", "pa"):
        r = await world.c.post(f"{approval}/approve", headers=who[name])
        assert r.status_code == 403, (name, r.text)
    assert (await world.claim_status(claim_id))["status"] == "held"

    # an expired proposal cannot be approved; a new one can
    world.clock.advance(timedelta(hours=world.settings.approval_ttl_hours, seconds=1))
    r = await world.c.post(f"{approval}/approve", headers=world.finance)
    assert r.status_code == 409 and r.json()["code"] == "proposal_expired"
    assert (await world.claim_status(claim_id))["status"] == "held"
    r = await world.c.post(path, headers=world.admin)
    assert r.status_code == 202, r.text
    decided = await world.approve_as_finance(r.json()["approval_id"])
    assert decided["status"] == "approved" and decided["result"]["status"] == "captured"
    claim = await world.claim_status(claim_id)
    assert claim["status"] == "captured" and claim["attestation"] == "resolved"
    types = await world.outbox_types()
    assert types.count("ila.payments.ApprovalRequested.v1") == 2
    assert types.count("ila.payments.ApprovalDecided.v1") == 1


@pytest.mark.parametrize("payments_config", [PaymentsConfig(velocity_per_hour=1)])
async def test_releasing_a_held_enrolment_needs_four_eyes(world: World) -> None:
    course = await world.course("pa", seats=5)
    assert (await world.propose("pa", await world.account(), course)).status_code == 202
    account = await world.account(credit=300_000)
    held = (await world.propose("pa", account, course)).json()
    assert held["status"] == "held"
    path = f"/v1/enrolments/{held['enrolment_id']}/release"
    assert (await world.c.post(path, headers=world.agency_b)).status_code == 404
    assert (await world.c.post(path, headers=world.finance)).status_code == 403
    r = await world.c.post(path, headers=world.admin)
    assert r.status_code == 202 and r.json()["action"] == "enrolment_release", r.text
    assert r.json()["subject"] == f"enrolment:{held['enrolment_id']}"
    approval = r.json()["approval_id"]
    # made by an admin, it is still in the managing agency's queue
    queue = await world.c.get("/v1/payments/approvals", headers=world.agency)
    assert [p["approval_id"] for p in queue.json()["items"]] == [approval]
    r = await world.c.post(
        f"/v1/payments/approvals/{approval}/refuse",
        headers=world.finance,
        json={"reason_code": "velocity_confirmed"},
    )
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert (await world.enrolment(held["enrolment_id"]))["status"] == "held"
    assert (await world.confirm(account, held["enrolment_id"])).status_code == 409
    r = await world.c.post(path, headers=world.agency)
    assert r.status_code == 202
    await world.approve_as_finance(r.json()["approval_id"])
    e = await world.enrolled_existing(account, held["enrolment_id"])
    assert e["status"] == "confirmed"
