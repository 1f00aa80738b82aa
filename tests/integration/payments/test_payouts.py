"""Payout runs released by four eyes, remittance, the SEPA pain.001 file (validated against
the official XSD), settlement and failure by finance."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal

import pytest
import xmlschema

from tests.integration.support.payments import NS, XSD, World, captured_claims

pytestmark = pytest.mark.postgres


async def test_a_run_pays_each_provider_once_with_a_valid_sepa_file(world: World) -> None:
    a = await captured_claims(world, "pa", [100, 50])
    b = await captured_claims(world, "pb", [90])
    run = await world.run_payouts(key="run-1")
    assert run["status"] == "proposed" and run["approval"]["action"] == "payout_release"
    assert run["approval"]["subject"] == f"payout_run:{run['run_id']}"
    assert run["claims"] == 3 and run["total"] == 250_000 and run["skipped"] == []
    by_provider = {p["provider_id"]: p for p in run["payouts"]}
    assert by_provider["pa"]["amount"] == 150_000 and by_provider["pb"]["amount"] == 100_000
    assert all(p["status"] == "proposed" for p in run["payouts"])
    # nothing is sent before release: no file, claims bound so no other run takes them
    payout = by_provider["pa"]
    early = await world.c.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=world.agency)
    assert early.status_code == 409 and early.json()["code"] == "payout_not_released"
    # the same key answers the same run; a new run finds nothing left to pay
    again = await world.c.post(
        "/v1/payouts/runs", headers={**world.agency, "Idempotency-Key": "run-1"}, json={}
    )
    assert again.json() == run
    second = await world.c.post(
        "/v1/payouts/runs", headers={**world.admin, "Idempotency-Key": "run-2"}, json={}
    )
    assert second.status_code == 409 and second.json()["code"] == "nothing_to_pay"
    await world.approve_as_finance(run["approval_id"])
    released = (await world.c.get(f"/v1/payouts/runs/{run['run_id']}", headers=world.agency)).json()
    assert released["status"] == "released" and released["total"] == 250_000
    assert all(p["status"] == "sent" for p in released["payouts"])

    detail = (await world.c.get(f"/v1/payouts/{payout['payout_id']}", headers=world.agency)).json()
    assert sorted(line["claim_id"] for line in detail["lines"]) == sorted(a)
    assert sum(line["amount"] for line in detail["lines"]) == 150_000
    for claim_id in a:
        claim = await world.claim_status(claim_id)
        assert claim["status"] == "in_payout" and claim["payout_id"] == payout["payout_id"]

    r = await world.c.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=world.provider("pa"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    xmlschema.XMLSchema(str(XSD)).validate(r.text)
    doc = ET.fromstring(r.content)
    header = doc.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "2"
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS) or "0") == Decimal("1500.00")
    amounts = [Decimal(x.text or "0") for x in doc.iterfind(".//p:InstdAmt", NS)]
    assert sorted(amounts) == [Decimal("500.00"), Decimal("1000.00")]
    assert {x.text for x in doc.iterfind(".//p:EndToEndId", NS)} == {c.replace("-", "") for c in a}
    assert {x.text for x in doc.iterfind(".//p:CdtrAcct/p:Id/p:IBAN", NS)} == {
        "DE89370400440532013000"
    }
    # the same payout gives the same file
    again_file = await world.c.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=world.agency)
    assert again_file.content == r.content
    assert b


async def test_a_run_needs_an_idempotency_key(world: World) -> None:
    await captured_claims(world, "pa", [100])
    r = await world.c.post("/v1/payouts/runs", headers=world.agency, json={})
    assert r.status_code == 428 and r.json()["header"] == "Idempotency-Key"
    assert (await world.c.get("/v1/payouts/runs", headers=world.admin)).json()["items"] == []


async def test_settled_claims_are_paid_failed_ones_payable_again(world: World) -> None:
    claims = await captured_claims(world, "pa", [100])
    run = await world.released_run()
    payout_id = run["payouts"][0]["payout_id"]
    bad = await world.c.post(
        f"/v1/payouts/{payout_id}/fail", headers=world.finance, json={"reason_code": "XX99"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_return_reason"
    r = await world.c.post(
        f"/v1/payouts/{payout_id}/fail", headers=world.finance, json={"reason_code": "AC04"}
    )
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert r.json()["failure_reason"] == "AC04"
    assert (await world.claim_status(claims[0]))["status"] == "captured"
    settle = await world.c.post(f"/v1/payouts/{payout_id}/settle", headers=world.finance)
    assert settle.status_code == 409
    rerun = await world.released_run()
    assert [p["amount"] for p in rerun["payouts"]] == [100_000]
    new_id = rerun["payouts"][0]["payout_id"]
    r = await world.c.post(f"/v1/payouts/{new_id}/settle", headers=world.finance)
    assert r.status_code == 200 and r.json()["status"] == "settled"
    claim = await world.claim_status(claims[0])
    assert claim["status"] == "paid" and claim["paid_at"] and claim["payout_id"] == new_id
    assert (await world.c.post(f"/v1/payouts/{new_id}/settle", headers=world.finance)).json()[
        "status"
    ] == "settled"
    # a settled payout cannot fail
    r = await world.c.post(
        f"/v1/payouts/{new_id}/fail", headers=world.finance, json={"reason_code": "AC04"}
    )
    assert r.status_code == 409 and r.json()["code"] == "payout_settled"
    assert (await world.run_payouts())["payouts"] == []
    listed = (await world.c.get("/v1/payouts", headers=world.provider("pa"))).json()["items"]
    assert {p["status"] for p in listed} == {"failed", "settled"}
    types = await world.outbox_types()
    assert types.count("ila.payments.PayoutSent.v1") == 2
    assert types.count("ila.payments.PayoutFailed.v1") == 1
    assert types.count("ila.payments.PayoutSettled.v1") == 1


async def test_a_provider_without_a_bank_account_is_skipped(world: World) -> None:
    await world.provider_status("nobank", "accredited")  # known, never registered a payout
    claims = await captured_claims(world, "nobank", [100], register=False)
    # an agency's run covers the providers it registered; this one no agency registered
    assert (await world.run_payouts())["skipped"] == []
    run = await world.run_payouts(world.admin)
    assert run["payouts"] == [] and run["status"] == "empty"
    assert run["skipped"] == [
        {"provider_id": "nobank", "reason": "no_bank_account", "claims": 1, "amount": 100_000}
    ]
    r = await world.c.put(
        "/v1/payees/nobank",
        headers=world.provider("nobank"),
        json={"name": "No Bank SARL", "iban": "DE89 3704 0044 0532 0130 01"},
    )
    assert r.status_code == 422 and "iban" in r.text
    # no agency registered it: no agency may propose its bank details
    r = await world.c.put(
        "/v1/payees/nobank",
        headers=world.agency,
        json={"name": "No Bank SARL", "iban": "FR14 2004 1010 0505 0001 3M02 606"},
    )
    assert r.status_code == 404
    r = await world.c.put(
        "/v1/payees/nobank",
        headers=world.provider("nobank"),
        json={"name": "No Bank SARL", "iban": "FR14 2004 1010 0505 0001 3M02 606"},
    )
    assert r.status_code == 202 and r.json()["summary"]["iban"] == "FR14 **** **** 2606"
    await world.approve_as_finance(r.json()["approval_id"])
    payee = (await world.c.get("/v1/payees/nobank", headers=world.provider("nobank"))).json()
    assert payee["iban"] == "FR1420041010050500013M02606" and payee["payable"] is False
    # new details wait for the cooling-off period: the run holds the payout
    held = await world.run_payouts(world.admin)
    assert held["payouts"] == [] and held["skipped"][0]["reason"] == "payee_cooling_off"
    world.clock.advance(timedelta(days=7, seconds=1))
    run = await world.released_run(world.admin)
    assert [p["amount"] for p in run["payouts"]] == [100_000]
    assert claims


async def test_a_failed_payout_of_a_suspended_provider_waits_for_an_agency(world: World) -> None:
    claims = await captured_claims(world, "pa", [100])
    run = await world.released_run()
    payout_id = run["payouts"][0]["payout_id"]
    await world.provider_status("pa", "suspended")
    assert (await world.claim_status(claims[0]))["status"] == "in_payout"  # already sent
    r = await world.c.post(
        f"/v1/payouts/{payout_id}/fail", headers=world.finance, json={"reason_code": "AC06"}
    )
    assert r.status_code == 200
    held = await world.claim_status(claims[0])
    assert held["status"] == "held" and held["payout_id"] is None
    assert (await world.run_payouts())["payouts"] == []
    assert (await world.release_claim(claims[0]))["status"] == "captured"
    again = await world.released_run()
    assert [p["amount"] for p in again["payouts"]] == [100_000]
