"""Bank details belong to the provider: proposed by it or its registering agency, approved by
finance, every change an event with masked IBANs; changed details wait for the cooling-off
period unless verified, and the provider is told when a payout is held."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.payments.deps import Components
from shared.service import components_of
from tests.integration.support.payments import World, captured_claims
from tests.support import bearer

pytestmark = pytest.mark.postgres

NEW = {"name": "Provider PA SARL", "iban": "FR14 2004 1010 0505 0001 3M02 606"}


async def events(world: World, kind: str) -> list[dict[str, object]]:
    async with world.rt.sessions() as session:
        rows = await session.execute(
            text("SELECT body FROM payments.outbox WHERE type = :t ORDER BY id"),
            {"t": f"ila.payments.{kind}.v1"},
        )
        return [json.loads(bytes(r.body))["data"] for r in rows]


async def test_a_change_is_proposed_approved_announced_and_cooled_off(world: World) -> None:
    claims = await captured_claims(world, "pa", [100])
    before = (await world.c.get("/v1/payees/pa", headers=world.agency)).json()
    assert before["source"] == "registration" and before["payable"] is True
    r = await world.c.put("/v1/payees/pa", headers=world.agency, json=NEW)
    assert r.status_code == 202, r.text
    proposal = r.json()
    assert r.headers["location"] == f"/v1/payments/approvals/{proposal['approval_id']}"
    assert proposal["action"] == "payee" and proposal["subject"] == "payee:pa"
    assert proposal["summary"] == {
        "provider_id": "pa",
        "iban": "FR14 **** **** 2606",
        "previous_iban": "DE89 **** **** 3000",
    }
    # nothing changed yet; a second proposal for the same payee waits for the first
    still = (await world.c.get("/v1/payees/pa", headers=world.provider("pa"))).json()
    assert still["iban"] == before["iban"]
    assert still["pending_approval_id"] == proposal["approval_id"]
    again = await world.c.put("/v1/payees/pa", headers=world.provider("pa"), json=NEW)
    assert again.status_code == 409 and again.json()["code"] == "proposal_pending"

    await world.approve_as_finance(proposal["approval_id"])
    payee = (await world.c.get("/v1/payees/pa", headers=world.provider("pa"))).json()
    assert payee["iban"] == "FR1420041010050500013M02606" and payee["source"] == "change"
    assert payee["payable"] is False and payee["held_until"]
    [changed] = await events(world, "PayeeChanged")
    assert changed["previous_iban"] == "DE89 **** **** 3000"
    assert changed["iban"] == "FR14 **** **** 2606"
    assert "Provider PA SARL" not in json.dumps(changed)

    # the run holds the provider's payout and tells it why and until when
    run = await world.run_payouts()
    assert run["payouts"] == [] and run["status"] == "empty"
    [held] = run["skipped"]
    assert held["reason"] == "payee_cooling_off" and held["claims"] == 1
    [told] = await events(world, "PayoutHeld")
    assert told["provider_id"] == "pa" and told["reason"] == "payee_cooling_off"
    assert (await world.claim_status(claims[0]))["status"] == "captured"

    # finance verifies the details with the bank: the next run pays them
    wrong = await world.c.post(
        "/v1/payees/pa/verification",
        headers=world.finance,
        json={"iban": "DE89370400440532013000", "result": "match"},
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "payee_changed"
    r = await world.c.post(
        "/v1/payees/pa/verification",
        headers=world.finance,
        json={"iban": NEW["iban"], "result": "match"},
    )
    assert r.status_code == 200 and r.json()["payable"] is True
    run = await world.released_run()
    [payout] = run["payouts"]
    assert payout["iban"] == "FR1420041010050500013M02606" and payout["status"] == "sent"


async def test_cooling_off_is_configurable_and_ends_on_its_own(world: World) -> None:
    await captured_claims(world, "pa", [100])
    r = await world.c.put("/v1/payees/pa", headers=world.provider("pa"), json=NEW)
    await world.approve_as_finance(r.json()["approval_id"])
    assert components_of(world.rt, Components).config.payee_cooling_off == timedelta(days=7)
    world.clock.advance(timedelta(days=6, hours=23))
    assert (await world.run_payouts())["payouts"] == []
    world.clock.advance(timedelta(hours=2))
    run = await world.released_run()
    assert [p["iban"] for p in run["payouts"]] == ["FR1420041010050500013M02606"]


async def test_details_changed_after_assembly_are_not_paid_on_release(world: World) -> None:
    claims = await captured_claims(world, "pa", [100])
    run = await world.run_payouts()
    r = await world.c.put("/v1/payees/pa", headers=world.provider("pa"), json=NEW)
    await world.approve_as_finance(r.json()["approval_id"])
    await world.approve_as_finance(run["approval_id"])
    got = (await world.c.get(f"/v1/payouts/runs/{run['run_id']}", headers=world.agency)).json()
    assert [(p["status"], p["cancel_reason"]) for p in got["payouts"]] == [
        ("cancelled", "payee_changed")
    ]
    assert (await world.claim_status(claims[0]))["status"] == "captured"


async def test_who_may_propose_bank_details(world: World) -> None:
    await world.register_provider("pa", agency_id="pes-fr")
    await world.register_provider("pb", agency_id="pes-b")
    agency_b = bearer(world.settings, "agency", sub="b-desk", agency_id="pes-b")
    cases = [
        (world.provider("pa"), "pa", 202),
        (world.provider("pb"), "pa", 404),
        (agency_b, "pa", 404),
        (agency_b, "pb", 202),
        (world.agency, "pb", 404),
        (world.agency, "nobody", 404),
        (world.admin, "pa", 403),
        (world.finance, "pa", 403),
        (world.auditor, "pa", 403),
        (bearer(world.settings, "qa", sub="qa"), "pa", 403),
        (bearer(world.settings, "funder", sub="f", funder_id="state"), "pa", 403),
    ]
    for headers, provider_id, status in cases:
        r = await world.c.put(f"/v1/payees/{provider_id}", headers=headers, json=NEW)
        assert r.status_code == status, (provider_id, status, r.text)
    # the proposer (whatever its token says) cannot approve its own proposal
    r = await world.c.put(
        "/v1/payees/pa",
        headers=bearer(world.settings, "agency", sub="same-person", agency_id="pes-fr"),
        json=NEW,
    )
    assert r.status_code == 409  # one pending proposal per payee
    pending = (
        await world.c.get(
            "/v1/payments/approvals", headers=world.finance, params={"status": "pending"}
        )
    ).json()["items"]
    assert {p["subject"] for p in pending} == {"payee:pa", "payee:pb"}


async def test_the_details_a_provider_was_registered_with_wait_for_verification_too(
    world: World,
) -> None:
    """One agency clerk registers a provider and types its IBAN: that is where money goes,
    so it is paid only once finance verified it with the bank (or the cooling-off passed)."""
    await world.register_provider("pr", verified=False)
    payee = (await world.c.get("/v1/payees/pr", headers=world.agency)).json()
    assert payee["source"] == "registration" and payee["payable"] is False
    assert payee["held_until"]
    # a one-day session: its claim is payable long before the cooling-off ends
    course = await world.course("pr", price=100_000, starts_in=-1, days=1, register=False)
    e = await world.enrolled("pr", await world.account(credit=200_000), course)
    world.session_over(e)
    r = await world.claim("pr", e["enrolment_id"], rate=100)
    claim = r.json()["claim_id"]
    await world.payable(claim)
    run = await world.run_payouts()
    assert run["payouts"] == []
    [held] = run["skipped"]
    assert held["reason"] == "payee_cooling_off" and held["claims"] == 1
    assert [e["provider_id"] for e in await events(world, "PayoutHeld")] == ["pr"]
    assert (await world.claim_status(claim))["status"] == "captured"
    # finance checks the account with the bank: the next run pays
    r = await world.c.post(
        "/v1/payees/pr/verification",
        headers=world.finance,
        json={"iban": payee["iban"], "result": "match"},
    )
    assert r.status_code == 200 and r.json()["payable"] is True, r.text
    paid = await world.released_run()
    assert [p["amount"] for p in paid["payouts"]] == [100_000]
