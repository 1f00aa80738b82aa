"""Paid training leave: a learner in work asks leave for an enrolment's sessions, the employer
approves or refuses before the deadline (or the request lapses), and on completion the
employer's wage compensation is paid from the leave fund's budget, in a payout run released
under four eyes, on a SEPA line of its own."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import xmlschema

from services.payments.config import LeaveConfig, PaymentsConfig
from services.payments.handlers.jobs import lapse_leave_once
from tests.integration.support.leave import EMPLOYER_IBAN, Leave
from tests.integration.support.payments import NS, XSD, World
from tests.support import eventually

pytestmark = pytest.mark.postgres

LEAVE_EVENTS = (
    "payments.LeaveRequested",
    "payments.LeaveApproved",
    "payments.LeaveRefused",
    "payments.LeaveLapsed",
    "payments.LeaveCompensationClaimed",
    "payments.LeaveCompensationCaptured",
    "payments.LeaveCompensationRefused",
)


async def leave_events(world: World) -> list[str]:
    return [
        t.removeprefix("ila.").rsplit(".", 1)[0]
        for t in await world.outbox_types()
        if any(t.startswith(f"ila.{e}.") for e in LEAVE_EVENTS)
    ]


async def test_approved_leave_is_compensated_in_a_sepa_file(world: World) -> None:
    leave = Leave(world)
    await leave.fund(1_000_000)
    employer = await leave.employer()
    await leave.payee(employer)
    enrolment = await leave.enrolled("pl-a")

    r = await leave.ask(enrolment, employer, hours=35, days=5)
    assert r.status_code == 201, r.text
    asked = r.json()
    assert asked["status"] == "requested" and asked["hours"] == 35 and len(asked["dates"]) == 5
    # fourteen days to decide (the session starts in thirty)
    decide_by = world.clock.now() + timedelta(days=14)
    assert abs((datetime.fromisoformat(asked["decide_by"]) - decide_by).total_seconds()) < 60
    request_id = asked["request_id"]

    # not before the training completed
    early = await leave.claim(request_id, employer)
    assert early.status_code == 409 and early.json()["code"] == "leave_not_approved"
    r = await leave.decide(request_id, employer, reason_code="training_plan", note="Team agrees")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["reason_code"] == "training_plan"
    early = await leave.claim(request_id, employer)
    assert early.status_code == 409 and early.json()["code"] == "training_not_completed"

    await leave.completed("pl-a", enrolment)
    r = await leave.claim(request_id, employer)
    assert r.status_code == 201, r.text
    claim = r.json()["claim"]
    # 35 hours at the default 15.00 an hour, under the cap
    assert claim["amount"] == 35 * 1_500 and claim["milestone"] == "leave_compensation"
    assert claim["provider_id"] == f"employer:{employer}" and claim["status"] == "approved"
    # claiming twice pays once
    twice = await leave.claim(request_id, employer)
    assert twice.status_code == 409 and twice.json()["code"] == "compensation_claimed"

    captured = await world.captured(claim["claim_id"])
    assert captured["captured"] == 52_500
    assert (await leave.request(request_id))["status"] == "compensated"
    assert await leave.drawn() == 52_500

    # paid in the national run, released by finance (four eyes), on a SEPA line of its own
    run = await world.run_payouts(world.admin)
    payouts = {p["provider_id"]: p for p in run["payouts"]}
    payout = payouts[f"employer:{employer}"]
    assert payout["amount"] == 52_500
    await world.approve_as_finance(run["approval_id"])
    r = await world.c.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=world.finance)
    assert r.status_code == 200, r.text
    xmlschema.XMLSchema(str(XSD)).validate(r.text)
    doc = ET.fromstring(r.content)
    transactions = list(doc.iterfind(".//p:CdtTrfTxInf", NS))
    assert len(transactions) == 1
    line = transactions[0]
    assert line.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == EMPLOYER_IBAN
    assert Decimal(line.findtext("p:Amt/p:InstdAmt", namespaces=NS) or "0") == Decimal("525.00")
    assert line.findtext("p:PmtId/p:EndToEndId", namespaces=NS) == claim["claim_id"].replace(
        "-", ""
    )
    r = await world.c.post(f"/v1/payouts/{payout['payout_id']}/settle", headers=world.finance)
    assert r.status_code == 200, r.text
    assert (await world.claim_status(claim["claim_id"]))["status"] == "paid"
    # nothing left to pay to the employer, and the fund paid once
    again = await world.run_payouts(world.admin)
    assert f"employer:{employer}" not in {p["provider_id"] for p in again["payouts"]}
    assert await leave.drawn() == 52_500
    # the ledger's books hold: the fund's budget drew what it paid, and granted no lot
    report = (await world.c.post("/v1/ledger/audit/verify", headers=world.auditor)).json()
    assert report["ok"], report["mismatches"]
    books = {(f["funder_id"], f["year"]): f for f in report["funders"]}
    fund = books[(leave.fund_id, world.clock.now().year)]
    assert fund["drawn"] == 52_500 and fund["lots_granted"] == 0
    assert await leave_events(world) == [
        "payments.LeaveRequested",
        "payments.LeaveApproved",
        "payments.LeaveCompensationClaimed",
        "payments.LeaveCompensationCaptured",
    ]


async def test_a_refused_leave_leaves_the_enrolment_intact(world: World) -> None:
    leave = Leave(world)
    employer = await leave.employer()
    enrolment = await leave.enrolled("pl-b")
    before = await world.enrolment(enrolment["enrolment_id"])
    r = await leave.ask(enrolment, employer)
    request_id = r.json()["request_id"]
    r = await leave.decide(
        request_id, employer, "refuse", reason_code="staffing_shortage", note="Busy season"
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused" and r.json()["reason_code"] == "staffing_shortage"
    assert r.json()["note"] == "Busy season"
    # the note stays with the employer and the national roles
    seen = await leave.request(request_id, world.learner(enrolment["account_id"]))
    assert seen["status"] == "refused" and seen["note"] is None
    assert await world.enrolment(enrolment["enrolment_id"]) == before
    # decided once; nothing to compensate
    again = await leave.decide(request_id, employer)
    assert again.status_code == 409 and again.json()["code"] == "leave_decided"
    claim = await leave.claim(request_id, employer)
    assert claim.status_code == 409 and claim.json()["code"] == "leave_not_approved"
    assert "payments.LeaveRefused" in await leave_events(world)
    # the learner may ask again once refused
    r = await leave.ask(enrolment, employer, hours=8, days=1)
    assert r.status_code == 201, r.text


async def test_a_lapsed_leave_leaves_the_enrolment_intact(world: World) -> None:
    leave = Leave(world)
    employer = await leave.employer()
    enrolment = await leave.enrolled("pl-c")
    later = await leave.enrolled("pl-c")
    before = await world.enrolment(enrolment["enrolment_id"])
    first = (await leave.ask(enrolment, employer)).json()["request_id"]
    second = (await leave.ask(later, employer)).json()["request_id"]
    world.clock.advance(timedelta(days=14, minutes=1))

    # past the deadline: the employer can no longer decide
    late = await leave.decide(first, employer)
    assert late.status_code == 409 and late.json()["code"] == "decision_deadline_passed"
    # a read sees the lapse (and records it); the sweep lapses the rest
    assert (await leave.request(second))["status"] == "lapsed"
    assert await lapse_leave_once(world.rt) == 1
    assert await lapse_leave_once(world.rt) == 0
    assert (await leave.request(first))["status"] == "lapsed"
    assert await world.enrolment(enrolment["enrolment_id"]) == before
    assert (await leave_events(world)).count("payments.LeaveLapsed") == 2


async def test_only_the_employer_named_decides(world: World) -> None:
    leave = Leave(world)
    employer, other = await leave.employer(), await leave.employer()
    enrolment = await leave.enrolled("pl-d")
    request_id = (await leave.ask(enrolment, employer)).json()["request_id"]
    for move in ("approve", "refuse"):
        r = await leave.decide(request_id, other, move)
        assert r.status_code == 404 and r.json()["code"] == "leave_request_not_found"
    r = await leave.claim(request_id, other)
    assert r.status_code == 404
    r = await world.c.get(f"/v1/leave-requests/{request_id}", headers=leave.employer_token(other))
    assert r.status_code == 404
    # the learner does not decide for the employer
    r = await world.c.post(
        f"/v1/leave-requests/{request_id}/approve",
        json={},
        headers=world.learner(enrolment["account_id"]),
    )
    assert r.status_code == 403
    # another employer's payee is not its to set
    r = await world.c.put(
        f"/v1/employers/{employer}/payee",
        json={"name": "Other", "iban": EMPLOYER_IBAN},
        headers=leave.employer_token(other),
    )
    assert r.status_code == 404
    assert (await leave.request(request_id))["status"] == "requested"


async def test_a_request_is_checked_and_changes_nothing_when_refused(world: World) -> None:
    leave = Leave(world)
    employer = await leave.employer()
    region = await leave.employer("region")
    enrolment = await leave.enrolled("pl-e")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"hours": 36, "days": 5}, 422, "hours_exceed_workload"),
        ({"hours": 20, "days": 2}, 422, "hours_exceed_days"),
        ({"hours": 8, "days": 30}, 422, "date_outside_session"),
        ({"employer_funder_id": region}, 422, "employer_not_found"),
        ({"employer_funder_id": "nobody"}, 422, "employer_not_found"),
    ]
    state = await world.payments_state()
    for body, status, code in cases:
        args = {"employer": employer, **body}
        if "employer_funder_id" in body:
            args["employer"] = body["employer_funder_id"]
            del args["employer_funder_id"]
        r = await leave.ask(enrolment, **args)
        assert (r.status_code, r.json().get("code")) == (status, code), r.text
    assert await world.payments_state() == state
    # another learner's enrolment is not found; a learner out of work gets no paid leave
    stranger = await world.account(employment_status="employed")
    r = await world.c.post(
        f"/v1/enrolments/{enrolment['enrolment_id']}/leave-requests",
        json={"employer_funder_id": employer, "hours": 8, "dates": [enrolment["starts_on"]]},
        headers=world.learner(stranger),
    )
    assert r.status_code == 404
    idle = await leave.enrolled("pl-e", employment_status="unemployed")
    r = await leave.ask(idle, employer)
    assert r.status_code == 409 and r.json()["code"] == "not_in_work"
    # one standing request per enrolment
    assert (await leave.ask(enrolment, employer)).status_code == 201
    r = await leave.ask(enrolment, employer)
    assert r.status_code == 409 and r.json()["code"] == "leave_already_requested"


@pytest.mark.parametrize(
    "payments_config",
    [PaymentsConfig(leave=LeaveConfig(hourly_rate_cents=2_000, cap_cents=40_000))],
)
async def test_compensation_is_capped_and_never_exceeds_the_fund(world: World) -> None:
    leave = Leave(world)
    await leave.fund(30_000)
    employer = await leave.employer()
    await leave.payee(employer)
    enrolment = await leave.enrolled("pl-f")
    request_id = (await leave.ask(enrolment, employer, hours=35)).json()["request_id"]
    assert (await leave.decide(request_id, employer)).status_code == 200
    await leave.completed("pl-f", enrolment)

    # 35 hours at 20.00 is 700.00, capped at 400.00; the fund has 300.00 left: refused
    r = await leave.claim(request_id, employer)
    assert r.status_code == 201, r.text
    refused = r.json()["claim"]
    assert refused["amount"] == 40_000
    claim = await _eventually_status(world, refused["claim_id"], "rejected")
    assert claim["reason"] == "budget_exceeded" and claim["captured"] == 0
    request = await leave.request(request_id)
    assert request["status"] == "approved"
    assert request["compensation_refused"] == "budget_exceeded"
    assert await leave.drawn() == 0
    assert f"employer:{employer}" not in {
        p["provider_id"] for p in (await world.run_payouts(world.admin))["payouts"]
    }

    # once the fund's budget is raised, the employer claims again: paid once, at the cap
    await leave.budget(100_000)
    r = await leave.claim(request_id, employer)
    assert r.status_code == 201, r.text
    paid = await world.captured(r.json()["claim"]["claim_id"])
    assert paid["captured"] == 40_000
    twice = await leave.claim(request_id, employer)
    assert twice.status_code == 409 and twice.json()["code"] == "compensation_claimed"
    assert await leave.drawn() == 40_000
    assert (await leave_events(world)).count("payments.LeaveCompensationRefused") == 1


async def _eventually_status(world: World, claim_id: str, status: str) -> dict[str, Any]:
    return await eventually(lambda: world.claim_status(claim_id), lambda c: c["status"] == status)
