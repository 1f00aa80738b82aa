"""Funders on the real database: a budget set under four eyes, top-ups granted by the funder
itself from it and never past it (50 at once included), and verify reconciling each budget
with the lots it paid for."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tests.integration.support import funders
from tests.integration.support.ledger import THIS_YEAR, Api

pytestmark = pytest.mark.postgres


async def test_admin_registers_funders_and_finance_approves_their_budgets(api: Api) -> None:
    r = await api.c.post(
        "/v1/ledger/funders",
        json={"kind": "employer", "name": "Acme", "employer_id": "emp-1"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    funder_id = r.json()["funder_id"]
    for body, headers, status in [
        ({"kind": "employer", "name": "X"}, api.agency, 403),
        ({"kind": "employer", "name": "X"}, api.finance, 403),
        ({"kind": "charity", "name": "X"}, api.admin, 422),
        ({"kind": "region"}, api.admin, 422),
    ]:
        assert (
            await api.c.post("/v1/ledger/funders", json=body, headers=headers)
        ).status_code == status
    # proposing is not setting: until finance approves, the funder may grant nothing
    r = await api.c.put(
        f"/v1/ledger/funders/{funder_id}/budgets/{THIS_YEAR}",
        json={"amount": 50_000},
        headers=api.admin,
    )
    assert r.status_code == 202, r.text
    account = await api.account()
    refused = await funders.grant(api, funder_id, account, 100)
    assert refused.status_code == 409 and refused.json()["code"] == "no_budget", refused.text
    # the funder cannot approve, nor can the admin who proposed
    assert (await api.approve(r.json()["approval_id"], api.admin)).status_code == 403
    assert (await api.approve(r.json()["approval_id"])).status_code == 200
    seen = await api.c.get(f"/v1/ledger/funders/{funder_id}", headers=funders.token(api, funder_id))
    assert seen.status_code == 200, seen.text
    assert seen.json()["budgets"] == [
        {"year": THIS_YEAR, "amount": 50_000, "drawn": 0, "draws": 0, "left": 50_000}
    ]
    # another funder, an agency: as if it did not exist
    other = await funders.funder(api, "region")
    assert (
        await api.c.get(f"/v1/ledger/funders/{funder_id}", headers=funders.token(api, other))
    ).status_code == 404
    assert (
        await api.c.get(f"/v1/ledger/funders/{funder_id}", headers=api.agency)
    ).status_code == 403
    unknown = await api.c.put(
        f"/v1/ledger/funders/{uuid.uuid4()}/budgets/{THIS_YEAR}",
        json={"amount": 1},
        headers=api.admin,
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "funder_not_found"


async def test_a_funder_grants_from_its_own_budget_and_never_past_it(api: Api) -> None:
    employer = await funders.funder(api, "employer", employer_id="emp-7")
    region = await funders.funder(api, "region", region="FR-IDF")
    await funders.budget(api, employer, THIS_YEAR, 10_000)
    await funders.budget(api, region, THIS_YEAR, 5_000)
    account = await api.account()

    earmark = {"isced_fields": ["06"]}
    r = await funders.grant(api, employer, account, 6_000, earmark=earmark)
    assert r.status_code == 201, r.text
    assert r.json()["year"] == THIS_YEAR and r.json()["funder_id"] == employer
    lot = next(x for x in (await api.balance(account))["lots"] if x["lot_id"] == r.json()["lot_id"])
    assert lot["funder_id"] == employer and lot["earmark"]["isced_fields"] == ["06"]

    before = await api.snapshot()
    # past what is left; from another funder's budget; into a wallet that does not exist
    over = await funders.grant(api, employer, account, 4_001)
    assert over.status_code == 409 and over.json()["code"] == "budget_exceeded", over.text
    foreign = await funders.grant(api, region, account, 100, headers=funders.token(api, employer))
    assert foreign.status_code == 404 and foreign.json()["code"] == "funder_not_found"
    nowallet = await funders.grant(api, employer, str(uuid.uuid4()), 100)
    assert nowallet.status_code == 404, nowallet.text
    no_year = await funders.grant(api, employer, account, 100, year=THIS_YEAR + 1)
    assert no_year.status_code == 409 and no_year.json()["code"] == "no_budget"
    # an agency's free-text top-up may not name a registered funder (it would bypass its budget)
    named = await api.grant(account, 100, funder_id=employer)
    assert named.status_code == 422 and named.json()["code"] == "funder_grants_from_budget"
    assert await api.snapshot() == before

    assert (await funders.grant(api, employer, account, 4_000)).status_code == 201
    assert (await funders.grant(api, employer, account, 1)).status_code == 409
    # the admin may grant for a funder; a learner, an agency may not
    assert (await funders.grant(api, region, account, 5_000, headers=api.admin)).status_code == 201
    assert (await funders.grant(api, region, account, 1, headers=api.agency)).status_code == 403
    # a budget is never set below what was granted from it
    low = await api.c.put(
        f"/v1/ledger/funders/{employer}/budgets/{THIS_YEAR}",
        json={"amount": 9_999},
        headers=api.admin,
    )
    assert low.status_code == 409 and low.json()["code"] == "budget_below_drawn"
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]
    books = {f["funder_id"]: f for f in report["funders"]}
    assert books[employer] == {
        "funder_id": employer,
        "year": THIS_YEAR,
        "budget": 10_000,
        "drawn": 10_000,
        "lots_granted": 10_000,
    }
    assert books[region]["drawn"] == books[region]["lots_granted"] == 5_000


async def test_fifty_concurrent_grants_never_overspend_a_budget(api: Api) -> None:
    funder = await funders.funder(api, "sector_fund")
    await funders.budget(api, funder, THIS_YEAR, 10_000)
    accounts = [await api.account() for _ in range(5)]
    amounts = [100 + 37 * (i % 9) for i in range(50)]  # 12,350 in all: more than the budget
    assert sum(amounts) > 10_000
    headers = funders.token(api, funder)
    replies = await asyncio.gather(
        *(
            funders.grant(api, funder, accounts[i % 5], amount, headers=headers)
            for i, amount in enumerate(amounts)
        )
    )
    assert {r.status_code for r in replies} <= {201, 409}, [r.text for r in replies]
    granted = [a for a, r in zip(amounts, replies, strict=True) if r.status_code == 201]
    refused = [a for a, r in zip(amounts, replies, strict=True) if r.status_code == 409]
    assert all(r.json()["code"] == "budget_exceeded" for r in replies if r.status_code == 409)
    assert refused and sum(granted) <= 10_000
    # each refusal came when what was left could not hold it: the budget was used up to
    # less than the smallest refused grant
    assert 10_000 - sum(granted) < min(refused)
    async with api.rt.sessions() as s:
        drawn = await s.scalar(
            text("SELECT drawn FROM ledger.budgets WHERE funder_id = :f"), {"f": funder}
        )
        lots = await s.scalar(
            text("SELECT sum(amount) FROM ledger.lots WHERE funder_id = :f"), {"f": funder}
        )
        draws = await s.scalar(
            text(
                "SELECT count(*) FROM ledger.events WHERE type LIKE '%BudgetDrawn%' "
                "AND data->>'funder_id' = :f"
            ),
            {"f": funder},
        )
    assert drawn == lots == sum(granted) and draws == len(granted)
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]


async def test_a_funder_may_be_registered_under_the_id_the_deployment_configures(
    api: Api,
) -> None:
    body = {"funder_id": "leave-fund", "kind": "sector_fund", "name": "Training leave fund"}
    r = await api.c.post("/v1/ledger/funders", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    assert r.json()["funder_id"] == "leave-fund"
    assert r.headers["location"] == "/v1/ledger/funders/leave-fund"
    # the id is taken: refused, and the first registration stands as it was
    again = await api.c.post(
        "/v1/ledger/funders", json={**body, "kind": "region", "name": "Other"}, headers=api.admin
    )
    assert again.status_code == 409 and again.json()["code"] == "id_conflict", again.text
    for bad in ("", "has space", "x" * 101, "ünïcode"):
        refused = await api.c.post(
            "/v1/ledger/funders", json={**body, "funder_id": bad}, headers=api.admin
        )
        assert refused.status_code == 422, (bad, refused.text)
    seen = await api.c.get("/v1/ledger/funders/leave-fund", headers=api.finance)
    assert seen.status_code == 200 and seen.json()["kind"] == "sector_fund", seen.text
    assert seen.json()["name"] == "Training leave fund"
