"""The learner's word on a claim: a captured claim is paid only once the learner attested it
or the attestation window passed uncontested; a contested claim is held until finance
approves the release the managing agency proposed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.payments.config import PaymentsConfig
from services.payments.handlers.jobs import lapse_once
from tests.integration.support.payments import World, captured_claim
from tests.support import eventually

pytestmark = pytest.mark.postgres


async def run_payouts(world: World) -> list[int]:
    """What a released payout run pays, claim by claim."""
    run = await world.released_run()
    return [p["amount"] for p in run["payouts"]]


async def test_a_claim_is_paid_only_once_the_learner_attests(world: World) -> None:
    account, claim = await captured_claim(world)
    claim_id = claim["claim_id"]
    assert claim["attest_until"] is not None
    assert await run_payouts(world) == []
    # only the learner of the enrolment attests; anyone else is told nothing exists
    other = await world.account()
    r = await world.c.post(f"/v1/claims/{claim_id}/attest", headers=world.learner(other))
    assert r.status_code == 404 and r.json()["code"] == "claim_not_found"
    for who in (world.provider("p1"), world.agency, world.finance, world.admin):
        assert (await world.c.post(f"/v1/claims/{claim_id}/attest", headers=who)).status_code == 403
    # the learner sees their own claims
    mine = await world.c.get("/v1/claims", headers=world.learner(account))
    assert [c["claim_id"] for c in mine.json()["items"]] == [claim_id]
    assert (await world.c.get("/v1/claims", headers=world.learner(other))).json()["items"] == []
    attested = await world.attest(claim_id)
    assert attested["attestation"] == "attested" and attested["attested_at"]
    assert (await world.attest(claim_id))["attested_at"] == attested["attested_at"]
    # once attested, it cannot be contested any more
    r = await world.c.post(
        f"/v1/claims/{claim_id}/contest",
        headers=world.learner(account),
        json={"reason_code": "did_not_attend"},
    )
    assert r.status_code == 409 and r.json()["code"] == "not_awaiting_attestation"
    assert await run_payouts(world) == [100_000]
    assert "ila.payments.ClaimAttested.v1" in await world.outbox_types()


@pytest.mark.parametrize("payments_config", [PaymentsConfig(attestation_days=3)])
async def test_a_claim_left_alone_is_paid_once_the_window_passed(world: World) -> None:
    account, claim = await captured_claim(world)
    claim_id = claim["claim_id"]
    world.clock.advance(timedelta(days=2))
    assert await lapse_once(world.rt) == 0
    assert await run_payouts(world) == []
    world.clock.advance(timedelta(days=1, seconds=1))
    # too late for the learner's word: the window closed
    for action, body in (("attest", None), ("contest", {"reason_code": "did_not_attend"})):
        r = await world.c.post(
            f"/v1/claims/{claim_id}/{action}", headers=world.learner(account), json=body
        )
        assert r.status_code == 409 and r.json()["code"] == "attestation_window_closed", r.text
    assert await lapse_once(world.rt) == 1
    assert (await world.claim_status(claim_id))["attestation"] == "lapsed"
    assert await run_payouts(world) == [100_000]


async def test_a_contested_claim_is_held_until_finance_approves_its_release(world: World) -> None:
    account, claim = await captured_claim(world)
    claim_id = claim["claim_id"]
    path = f"/v1/claims/{claim_id}/contest"
    learner = world.learner(account)
    # a reason code, never free text
    for body in ({"reason_code": "he never came, ask Paul"}, {}, {"reason_code": "x", "note": 1}):
        r = await world.c.post(path, headers=learner, json=body)
        assert r.status_code == 422, r.text
    r = await world.c.post(path, headers=learner, json={"reason_code": "did_not_attend"})
    assert r.status_code == 200, r.text
    contested = r.json()
    assert contested["status"] == "held" and contested["hold_reason"] == "learner_contested"
    assert contested["attestation"] == "contested"
    assert contested["contest_reason"] == "did_not_attend"
    # asked twice, the same answer; attesting now is refused
    again = await world.c.post(path, headers=learner, json={"reason_code": "did_not_attend"})
    assert again.json()["contested_at"] == contested["contested_at"]
    r = await world.c.post(f"/v1/claims/{claim_id}/attest", headers=learner)
    assert r.status_code == 409
    assert await run_payouts(world) == []
    types = await world.outbox_types()
    assert types.count("ila.payments.ClaimContested.v1") == 1
    # even past the window, a contested claim stays held
    world.clock.advance(timedelta(days=15))
    assert await lapse_once(world.rt) == 0
    assert await run_payouts(world) == []
    # the managing agency proposes the release; finance approves; then it is payable
    r = await world.c.post(f"/v1/claims/{claim_id}/release", headers=world.agency)
    assert r.status_code == 202 and r.json()["summary"]["attestation"] == "contested"
    assert r.json()["summary"]["contest_reason"] == "did_not_attend"
    await world.approve_as_finance(r.json()["approval_id"])
    released = await world.claim_status(claim_id)
    assert released["status"] == "captured" and released["attestation"] == "resolved"
    assert await run_payouts(world) == [100_000]


async def test_a_claim_contested_as_soon_as_it_is_made_is_captured_but_held(world: World) -> None:
    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    world.session_over(e)
    r = await world.claim("p1", e["enrolment_id"], rate=50)
    claim_id = r.json()["claim_id"]
    r = await world.c.post(
        f"/v1/claims/{claim_id}/contest",
        headers=world.learner(account),
        json={"reason_code": "did_not_complete"},
    )
    assert r.status_code == 200 and r.json()["status"] == "held", r.text

    async def captured() -> dict[str, Any]:
        return await world.claim_status(claim_id)

    held = await eventually(captured, lambda c: c["captured"] == 50_000)
    assert held["status"] == "held"
    assert await run_payouts(world) == []
