"""Co-funding rules on the real database: the flow of one euro with three funders (the
state's yearly credit, an employer's earmarked top-up, a region's rule paying the shortfall
of an enrolment in its region), each funder's statement summing to what the audit stream
says its lots paid; a spent budget and a non-matching enrolment leave the learner to pay;
20 enrolments at once never overspend a rule's budget."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from shared.events.ledger import CourseRef
from tests.integration.support import funders
from tests.integration.support.funders import Payments, audit_stream, paid_by_funder
from tests.integration.support.ledger import THIS_YEAR, Api
from tests.support import eventually

pytestmark = pytest.mark.postgres

DIGITAL_IDF = CourseRef(course_id=uuid.uuid4(), isced_field="0613", eqf_level=5, region="FR-IDF")
WELDING_IDF = CourseRef(course_id=uuid.uuid4(), isced_field="0715", eqf_level=4, region="FR-IDF")
WELDING_BRU = CourseRef(course_id=uuid.uuid4(), isced_field="0715", eqf_level=4, region="BE-BRU")
STANDARD = {"qualification_level": 6, "employment_status": "employed", "need_flags": []}
"""A learner the policy gives its base amount (no enhanced need)."""


async def reservation(api: Api, enrolment: dict[str, Any]) -> dict[str, Any]:
    """What the ledger answered: the reservation (amount held) or its refusal."""
    async with api.rt.sessions() as s:
        row = (
            await s.execute(
                text("SELECT amount, status FROM ledger.reservations WHERE reservation_id = :r"),
                {"r": enrolment["reservation_id"]},
            )
        ).first()
        if row is not None:
            return {"status": row.status, "amount": row.amount}
        refused = await s.scalar(
            text(
                "SELECT data FROM ledger.events WHERE type LIKE '%ReservationRejected%' "
                "AND data->>'reservation_id' = :r"
            ),
            {"r": str(enrolment["reservation_id"])},
        )
    assert refused is not None, "the ledger did not answer"
    return {"status": "rejected", "reason": refused["reason"], "available": refused["available"]}


async def cofunding_lots(api: Api, funder_id: str) -> list[dict[str, Any]]:
    async with api.rt.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT lot_id, account_id, amount, reason, earmark FROM ledger.lots "
                "WHERE funder_id = :f ORDER BY granted_at"
            ),
            {"f": funder_id},
        )
        return [dict(r) for r in rows.mappings()]


async def verified(api: Api) -> dict[str, Any]:
    report: dict[str, Any] = (
        await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)
    ).json()
    assert report["ok"], report["mismatches"]
    return {f["funder_id"]: f for f in report["funders"]}


async def test_one_euro_three_funders_and_each_statement_is_what_its_lots_paid(api: Api) -> None:
    state = await funders.funder(api, "state")
    employer = await funders.funder(api, "employer", employer_id="emp-42")
    region = await funders.funder(api, "region", region="FR-IDF")
    ann, bob = await api.account(**STANDARD), await api.account(**STANDARD)
    await api.policy(THIS_YEAR, base_amount=20_000, cap=100_000, funder_id=state)
    assert (await api.allocate(THIS_YEAR))["status"] == "finished"
    await funders.budget(api, employer, THIS_YEAR, 50_000)
    await funders.budget(api, region, THIS_YEAR, 50_000)
    assert (
        await funders.grant(api, employer, ann, 5_000, earmark={"isced_fields": ["06"]})
    ).status_code == 201
    rule = await funders.cofunding_rule(api, region, region="FR-IDF", share=100)
    listed = await api.c.get(
        f"/v1/ledger/funders/{region}/cofunding-rules", headers=funders.token(api, region)
    )
    assert listed.status_code == 200, listed.text
    assert [(r["rule_id"], r["region"], r["share"]) for r in listed.json()["rules"]] == [
        (rule, "FR-IDF", 100)
    ]

    pay = Payments(api)
    # ann's 25,000 (the state's 20,000, the employer's 5,000) do not cover 40,000 in her
    # region: the region pays the 15,000 shortfall, and she pays nothing
    digital = await pay.enrol(ann, DIGITAL_IDF, 40_000, "provider-a")
    assert await reservation(api, digital) == {"status": "active", "amount": 40_000}
    await pay.capture(digital, 40_000)
    # bob's course is in another region: no co-funding, refused; then he pays the rest
    abroad = await pay.enrol(bob, WELDING_BRU, 30_000, "provider-b")
    assert await reservation(api, abroad) == {
        "status": "rejected",
        "reason": "insufficient_credit",
        "available": 20_000,
    }
    again = await pay.enrol(bob, WELDING_BRU, 30_000, "provider-b", up_to=True)
    assert await reservation(api, again) == {"status": "active", "amount": 20_000}
    await pay.capture(again, 20_000)

    (lot,) = await cofunding_lots(api, region)
    assert (lot["account_id"], lot["amount"], lot["reason"]) == (
        uuid.UUID(ann),
        15_000,
        "cofunding",
    )
    assert lot["earmark"]["course_ids"] == [str(DIGITAL_IDF.course_id)]
    stream = await audit_stream(api)
    (drawn,) = [
        e["data"]
        for e in stream
        if e["type"].startswith("ila.ledger.BudgetDrawn") and e["data"]["funder_id"] == region
    ]
    assert drawn["rule_id"] == rule and drawn["enrolment_id"] == str(digital["enrolment_id"])
    assert drawn["amount"] == 15_000

    paid = paid_by_funder(stream)
    assert paid == {state: 40_000, employer: 5_000, region: 15_000}
    today = datetime.now(UTC).date().isoformat()
    for funder in (state, employer, region):
        r = await api.c.get(
            f"/v1/ledger/funders/{funder}/statement",
            params={"from": today, "to": today},
            headers=api.finance,
        )
        assert r.status_code == 200, r.text
        totals = r.json()["totals"]
        assert totals["net"] == sum(x["amount"] for x in r.json()["lines"]) == paid[funder]
        assert totals["cofunding"] == (15_000 if funder == region else 0)
    books = await verified(api)
    assert books[region]["drawn"] == books[region]["lots_granted"] == 15_000


async def test_a_spent_budget_or_a_course_that_does_not_match_leaves_the_learner_to_pay(
    api: Api,
) -> None:
    state = await funders.funder(api, "state")
    region = await funders.funder(api, "region", region="FR-IDF")
    await api.policy(THIS_YEAR, base_amount=10_000, cap=100_000, funder_id=state)
    learners = [await api.account(**STANDARD) for _ in range(3)]
    assert (await api.allocate(THIS_YEAR))["status"] == "finished"
    await funders.budget(api, region, THIS_YEAR, 6_000)
    # the region pays half the shortfall of digital courses (ISCED-F 06) of EQF 4 to 6
    await funders.cofunding_rule(
        api, region, headers=api.admin, share=50, isced_prefix="06", eqf_min=4, eqf_max=6
    )
    pay = Payments(api)
    # half of 12,000 missing: the budget, all of it
    first = await pay.enrol(learners[0], DIGITAL_IDF, 22_000, "provider-a", up_to=True)
    assert await reservation(api, first) == {"status": "active", "amount": 16_000}
    # the budget is spent: the rule does not apply, the learner pays what is missing
    before = await api.snapshot()
    second = await pay.enrol(learners[1], DIGITAL_IDF, 22_000, "provider-a", up_to=True)
    assert await reservation(api, second) == {"status": "active", "amount": 10_000}
    # welding is not a digital field: not co-funded (even with a budget, see above)
    third = await pay.enrol(learners[2], WELDING_IDF, 22_000, "provider-a", up_to=True)
    assert await reservation(api, third) == {"status": "active", "amount": 10_000}
    after = await api.snapshot()
    assert [x for x in after["lots"] if x["funder_id"] == region] == [
        x for x in before["lots"] if x["funder_id"] == region
    ]
    assert len(await cofunding_lots(api, region)) == 1
    books = await verified(api)
    assert books[region]["drawn"] == books[region]["lots_granted"] == 6_000


async def test_a_partial_cofunding_is_offered_to_the_learner_before_it_is_granted(
    api: Api,
) -> None:
    region = await funders.funder(api, "region", region="FR-IDF")
    await funders.budget(api, region, THIS_YEAR, 50_000)
    await funders.cofunding_rule(api, region, region="FR-IDF", share=100, cap=4_000)
    ann = await api.account()
    pay = Payments(api)
    # nothing of her own, 4,000 from the region: refused, the offer counts the region's part
    asked = await pay.enrol(ann, DIGITAL_IDF, 10_000, "provider-a")
    assert await reservation(api, asked) == {
        "status": "rejected",
        "reason": "insufficient_credit",
        "available": 4_000,
    }
    assert await cofunding_lots(api, region) == []
    accepted = await pay.enrol(ann, DIGITAL_IDF, 10_000, "provider-a", up_to=True)
    assert await reservation(api, accepted) == {"status": "active", "amount": 4_000}
    await verified(api)


async def test_twenty_enrolments_at_once_never_overspend_a_rule_budget(api: Api) -> None:
    region = await funders.funder(api, "region", region="FR-IDF")
    await funders.budget(api, region, THIS_YEAR, 16_000)
    await funders.cofunding_rule(api, region, region="FR-IDF", share=100)
    learners = [await api.account() for _ in range(20)]
    pay = Payments(api)
    enrolments = await asyncio.gather(
        *(pay.enrol(a, DIGITAL_IDF, 3_000, "provider-a", up_to=True) for a in learners)
    )
    answers = [await reservation(api, e) for e in enrolments]
    held = sorted((a["amount"] for a in answers if a["status"] == "active"), reverse=True)
    # 16,000 pays five whole shortfalls and 1,000 of a sixth; the others find it spent
    assert held == [3_000] * 5 + [1_000]
    assert all(
        a == {"status": "rejected", "reason": "insufficient_credit", "available": 0}
        for a in answers
        if a["status"] == "rejected"
    )
    lots = await cofunding_lots(api, region)
    assert sum(x["amount"] for x in lots) == 16_000 and len(lots) == 6
    async with api.rt.sessions() as s:
        drawn = await s.scalar(
            text("SELECT drawn FROM ledger.budgets WHERE funder_id = :f"), {"f": region}
        )
    assert drawn == 16_000
    books = await verified(api)
    assert books[region]["drawn"] == books[region]["lots_granted"] == 16_000


async def test_rules_are_proposed_by_the_funder_or_an_admin_and_checked(api: Api) -> None:
    employer = await funders.funder(api, "employer", employer_id="emp-9")
    other = await funders.funder(api, "region", region="FR-IDF")
    path = f"/v1/ledger/funders/{employer}/cofunding-rules"
    own = funders.token(api, employer)
    for body, headers, status, code in [
        ({"year": THIS_YEAR, "share": 50, "employer_id": "emp-9"}, api.agency, 403, None),
        ({"year": THIS_YEAR, "share": 50, "employer_id": "emp-9"}, api.finance, 403, None),
        (
            {"year": THIS_YEAR, "share": 50, "employer_id": "emp-9"},
            funders.token(api, other),
            404,
            "funder_not_found",
        ),
        ({"year": THIS_YEAR, "employer_id": "emp-9"}, own, 422, None),  # pays nothing
        ({"year": THIS_YEAR, "share": 101, "employer_id": "emp-9"}, own, 422, None),
        ({"year": THIS_YEAR, "share": 50, "eqf_min": 6, "eqf_max": 4}, own, 422, None),
        ({"year": THIS_YEAR, "share": 50, "employer_id": "emp-1"}, own, 422, "not_its_employees"),
        ({"year": THIS_YEAR, "share": 50}, own, 422, "not_its_employees"),
    ]:
        r = await api.c.post(path, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["code"] == code
    # proposed is not in force: until finance approves, no rule is listed
    r = await api.c.post(
        path, json={"year": THIS_YEAR, "cap": 2_000, "employer_id": "emp-9"}, headers=own
    )
    assert r.status_code == 202, r.text
    assert (await api.c.get(path, headers=own)).json()["rules"] == []
    assert (await api.approve(r.json()["approval_id"], own)).status_code == 403
    assert (await api.approve(r.json()["approval_id"])).status_code == 200
    (listed,) = (await api.c.get(path, headers=api.auditor)).json()["rules"]
    assert listed["rule_id"] == r.json()["rule_id"] and listed["cap"] == 2_000


async def test_an_employers_rule_pays_for_its_employees_only(api: Api) -> None:
    employer = await funders.funder(api, "employer", employer_id="emp-42")
    await funders.budget(api, employer, THIS_YEAR, 50_000)
    await funders.cofunding_rule(api, employer, employer_id="emp-42", share=100, cap=5_000)
    staff = await api.account(**STANDARD, employer_id="emp-42")
    outsider = await api.account(**STANDARD, employer_id="emp-7")
    hired = await api.account(**STANDARD)
    # the accounts service tells the ledger of a change of employer (an id, never a name)
    r = await api.c.patch(
        f"/v1/accounts/{hired}/profile", json={"employer_id": "emp-42"}, headers=api.agency
    )
    assert r.status_code == 200 and r.json()["need_profile"]["employer_id"] == "emp-42"

    async def profile_noted() -> Any:
        async with api.rt.sessions() as s:
            return await s.scalar(
                text("SELECT profile->>'employer_id' FROM ledger.wallets WHERE account_id = :a"),
                {"a": uuid.UUID(hired)},
            )

    await eventually(profile_noted, lambda employer_id: employer_id == "emp-42")
    pay = Payments(api)
    answers = {}
    for name, account in (("staff", staff), ("outsider", outsider), ("hired", hired)):
        enrolment = await pay.enrol(account, WELDING_BRU, 8_000, "provider-a", up_to=True)
        answers[name] = await reservation(api, enrolment)
    assert answers["staff"] == answers["hired"] == {"status": "active", "amount": 5_000}
    assert answers["outsider"]["status"] == "rejected"
    lots = await cofunding_lots(api, employer)
    assert sorted(str(x["account_id"]) for x in lots) == sorted([staff, hired])
    # the employer's id is checked for its shape like any id
    bad = await api.c.patch(
        f"/v1/accounts/{hired}/profile", json={"employer_id": "Acme Ltd"}, headers=api.agency
    )
    assert bad.status_code == 422, bad.text
    await verified(api)
