"""The redirected payout, replayed through the HTTP API exactly as reported:

"Agency B set the payee bank details of a provider that agency A registered (no ownership
check, no event), ran payouts, and the money went to B's IBAN. B then downloaded the SEPA
file, marked the payout failed and ran payouts again: the same claim was paid a second time
under a new SEPA message id."

Every step is refused with a problem document, and afterwards the payees, payouts, runs,
claims, proposals and SEPA files are exactly as before the attempt.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.support.payments import World, captured_claims
from tests.support import bearer

pytestmark = pytest.mark.postgres

B_IBAN = "FR1420041010050500013M02606"
TABLES = {
    "payees": "provider_id",
    "payouts": "payout_id",
    "payout_lines": "payout_id, claim_id",
    "payout_runs": "run_id",
    "claims": "claim_id",
    "approvals": "approval_id",
}


async def snapshot(world: World) -> dict[str, Any]:
    state: dict[str, Any] = {}
    async with world.rt.sessions() as session:
        for table, key in TABLES.items():
            rows = await session.execute(text(f"SELECT * FROM payments.{table} ORDER BY {key}"))
            state[table] = [dict(r._mapping) for r in rows]
        payouts = [r["payout_id"] for r in state["payouts"]]
    files = {}
    for payout_id in payouts:
        r = await world.c.get(f"/v1/payouts/{payout_id}/sepa", headers=world.admin)
        files[payout_id] = (r.status_code, r.content)
    state["sepa"] = files
    state["outbox"] = await world.outbox_types()
    return state


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def test_agency_b_cannot_redirect_nor_repay_a_payout_of_agency_a(world: World) -> None:
    # agency A registered provider pa; its claim was paid by a released run to pa's IBAN
    await world.register_provider("pa", agency_id="pes-fr")
    claims = await captured_claims(world, "pa", [100], register=False)
    run = await world.released_run()
    payout_id = run["payouts"][0]["payout_id"]
    b = bearer(world.settings, "agency", sub="b-desk", agency_id="pes-b")
    before = await snapshot(world)

    # 1. B sets the payee bank details of A's provider: not found, like a provider that
    #    does not exist (same status, same shape)
    body = {"name": "B Holding", "iban": B_IBAN}
    r = await world.c.put("/v1/payees/pa", headers=b, json=body)
    refused = problem(r, 404)
    missing = problem(await world.c.put("/v1/payees/no-such", headers=b, json=body), 404)
    assert refused["code"] == missing["code"] == "payee_not_found"
    assert refused["detail"].removesuffix("pa") == missing["detail"].removesuffix("no-such")
    assert set(refused) == set(missing)
    assert problem(await world.c.get("/v1/payees/pa", headers=b), 404)["code"] == (
        "payee_not_found"
    )

    # 2. B runs payouts: nothing of B's providers is payable, and A's claim is in a payout
    r = await world.c.post("/v1/payouts/runs", headers={**b, "Idempotency-Key": "b-1"}, json={})
    assert problem(r, 409)["code"] == "nothing_to_pay"
    r = await world.c.post("/v1/payouts/runs", headers=b, json={})
    assert problem(r, 428)["header"] == "Idempotency-Key"

    # 3. B downloads the SEPA file of A's payout: not found, like a payout that does not exist
    r = await world.c.get(f"/v1/payouts/{payout_id}/sepa", headers=b)
    assert problem(r, 404)["code"] == "payout_not_found"
    assert problem(await world.c.get(f"/v1/payouts/{payout_id}", headers=b), 404)
    assert (await world.c.get("/v1/payouts", headers=b)).json()["items"] == []

    # 4. B marks the payout failed: only finance records the bank's answer
    r = await world.c.post(f"/v1/payouts/{payout_id}/fail", headers=b, json={"reason_code": "AC04"})
    problem(r, 403)
    r = await world.c.post(
        f"/v1/payouts/{payout_id}/fail", headers=world.agency, json={"reason_code": "AC04"}
    )
    problem(r, 403)  # not even the registering agency

    # 5. B runs payouts again: still nothing to pay, and the claim stays in its one payout
    r = await world.c.post("/v1/payouts/runs", headers={**b, "Idempotency-Key": "b-2"}, json={})
    assert problem(r, 409)["code"] == "nothing_to_pay"
    r = await world.c.post(
        "/v1/payouts/runs", headers={**world.admin, "Idempotency-Key": "adm"}, json={}
    )
    assert problem(r, 409)["code"] == "nothing_to_pay"

    assert await snapshot(world) == before
    claim = await world.claim_status(claims[0])
    assert claim["status"] == "in_payout" and claim["payout_id"] == payout_id
    # the payout still goes to A's provider's IBAN, not B's
    payout = (await world.c.get(f"/v1/payouts/{payout_id}", headers=world.agency)).json()
    assert payout["iban"] == "DE89370400440532013000"
    assert not any("PayeeChanged" in t for t in await world.outbox_types())
