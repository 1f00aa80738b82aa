"""Who may see and do what with payouts, runs and payees, for every role (finance, qa and
funder included), and the four-eyes rules on payee changes and payout releases: the
proposer cannot approve, a wrong role cannot, an expired proposal cannot be approved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.support.payments import World, captured_claims
from tests.support import bearer

pytestmark = pytest.mark.postgres


async def test_payouts_and_payees_matrix(world: World) -> None:
    await world.register_provider("pa", agency_id="pes-fr")
    await world.register_provider("pb", agency_id="pes-b")
    await captured_claims(world, "pa", [100], register=False)
    run = await world.released_run()
    payout_id = run["payouts"][0]["payout_id"]
    s = world.settings
    who = {
        "pa": world.provider("pa"),
        "pb": world.provider("pb"),
        "agency": world.agency,
        "agency_b": bearer(s, "agency", sub="b-desk", agency_id="pes-b"),
        "admin": world.admin,
        "finance": world.finance,
        "auditor": world.auditor,
        "qa": bearer(s, "qa", sub="qa"),
        "funder": bearer(s, "funder", sub="f", funder_id="state"),
        "learner": world.learner("00000000-0000-0000-0000-000000000001"),
        "nobody": {},
    }
    reader = {
        "pa": 200,
        "pb": 404,
        "agency": 200,
        "agency_b": 404,
        "admin": 200,
        "finance": 200,
        "auditor": 200,
        "qa": 403,
        "funder": 403,
        "learner": 403,
        "nobody": 401,
    }
    run_reader = {**reader, "pa": 403, "pb": 403}
    gets = [
        (f"/v1/payouts/{payout_id}", reader),
        (f"/v1/payouts/{payout_id}/sepa", reader),
        ("/v1/payees/pa", reader),
        (f"/v1/payouts/runs/{run['run_id']}", run_reader),
        ("/v1/payouts", {**reader, "pb": 200, "agency_b": 200}),
        ("/v1/payouts/runs", {**run_reader, "agency_b": 200}),
    ]
    for path, expected in gets:
        for name, status in expected.items():
            r = await world.c.get(path, headers=who[name])
            assert r.status_code == status, (path, name, r.status_code, r.text)
    # lists are narrowed to the caller's scope
    for name, count in (("pa", 1), ("pb", 0), ("agency", 1), ("agency_b", 0), ("finance", 1)):
        items = (await world.c.get("/v1/payouts", headers=who[name])).json()["items"]
        assert len(items) == count, name
    runs = (await world.c.get("/v1/payouts/runs", headers=who["agency_b"])).json()["items"]
    assert runs == []

    not_allowed = ("pa", "pb", "auditor", "qa", "funder", "learner")
    posts = [
        ("/v1/payouts/runs", {}, {**{n: 403 for n in not_allowed}, "finance": 403}),
        (f"/v1/payouts/{payout_id}/settle", None, {n: 403 for n in (*not_allowed, "agency")}),
        (
            f"/v1/payouts/{payout_id}/fail",
            {"reason_code": "AC04"},
            {n: 403 for n in (*not_allowed, "agency", "agency_b", "admin")},
        ),
        (
            "/v1/payees/pa/verification",
            {"iban": "DE89370400440532013000", "result": "match"},
            {n: 403 for n in (*not_allowed, "agency", "admin")},
        ),
    ]
    for path, payload, expected in posts:
        for name, status in {**expected, "nobody": 401}.items():
            headers = {**who[name], "Idempotency-Key": f"k-{name}"}
            r = await world.c.post(path, headers=headers, json=payload)
            assert r.status_code == status, (path, name, r.status_code, r.text)
    # nothing of the above changed the payout
    got = (await world.c.get(f"/v1/payouts/{payout_id}", headers=world.finance)).json()
    assert got["status"] == "sent"


async def test_four_eyes_on_payee_changes_and_payout_releases(world: World) -> None:
    await captured_claims(world, "pa", [100])
    s = world.settings
    run = await world.run_payouts()  # proposed by the agency's "pes-fr-desk"
    r = await world.c.put(
        "/v1/payees/pa",
        headers=world.agency,
        json={"name": "PA", "iban": "FR1420041010050500013M02606"},
    )
    payee = r.json()
    for approval_id in (run["approval_id"], payee["approval_id"]):
        path = f"/v1/payments/approvals/{approval_id}/approve"
        for headers in (
            world.agency,
            world.admin,
            world.auditor,
            world.provider("pa"),
            bearer(s, "qa", sub="qa"),
            bearer(s, "funder", sub="f", funder_id="state"),
        ):
            assert (await world.c.post(path, headers=headers)).status_code == 403
        same = await world.c.post(path, headers=bearer(s, "finance", sub="pes-fr-desk"))
        assert same.status_code == 403 and same.json()["code"] == "same_person"
    # finance never proposes
    r = await world.c.put(
        "/v1/payees/pa",
        headers=world.finance,
        json={"name": "PA", "iban": "DE89370400440532013000"},
    )
    assert r.status_code == 403
    # expired proposals cannot be approved (payments' clock drives four eyes)
    world.clock.advance(timedelta(hours=s.approval_ttl_hours, seconds=1))
    for approval_id in (run["approval_id"], payee["approval_id"]):
        body = await world.approve_as_finance(approval_id, expect=409)
        assert body["code"] == "proposal_expired"
    payee_now = (await world.c.get("/v1/payees/pa", headers=world.finance)).json()
    assert payee_now["iban"] == "DE89370400440532013000"
    got = (await world.c.get(f"/v1/payouts/runs/{run['run_id']}", headers=world.finance)).json()
    assert got["status"] == "expired" and {p["status"] for p in got["payouts"]} == {"proposed"}
