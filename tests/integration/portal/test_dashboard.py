"""The monitoring dashboard in the all-in-one server: a small population built through the
services' APIs (accounts of two agencies in two regions, of several ages and need tiers;
credit of two funders, one lot expired; enrolments confirmed, claims captured, a payout, a
contested claim held), then the dashboard's figures against figures the test computes by
itself: the money from the ledger's audit stream, the participation from the accounts it
opened, the activity from the enrolments, claims and runs it made."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from services.ledger.deps import LedgerComponents
from services.ledger.handlers.sweeps import sweep_once
from shared.service import components_of
from tests.integration.support.catalogue import course_body, provider_body
from tests.integration.support.dashboard import (
    Person,
    audit_stream,
    ledger_sums,
    money_rows,
    new_id,
    participation,
    read_csv,
    serve_everything,
)
from tests.integration.support.payments import World
from tests.support import bearer, eventually

pytestmark = pytest.mark.postgres

PROVIDER = "prov-dash"


def month(stamp: str) -> str:
    return stamp[:7]


async def populate(world: World) -> dict[str, Any]:
    """The population; what the test knows of it."""
    year = date.today().year
    course_ict = await world.course(
        PROVIDER, price=100_000, starts_in=-1, days=1, isced_field="0613"
    )
    course_eng = await world.course(
        PROVIDER, price=80_000, starts_in=-1, days=1, isced_field="0715"
    )

    async def person(region: str, age: int, flags: list[str], agency: str = "a") -> Person:
        token = world.agency if agency == "a" else world.agency_b
        account_id = await world.account(
            agency=token,
            region=region,
            birth_date=f"{year - age}-03-01",
            need_flags=flags,
        )
        tier = "high" if "disability" in flags else "priority" if flags else "standard"
        return Person(account_id, agency, region, year - age, tier)

    a1 = await person("Île-de-France", 26, [])
    a2 = await person("Bretagne", 45, ["disability"])
    a3 = await person("Île-de-France", 64, ["single_parent"])
    a4 = await person("Bretagne", 22, [])
    b1 = await person("Île-de-France", 35, [], agency="b")
    b2 = await person("Bretagne", 40, ["disability"], agency="b")

    await world.grant(a1.account_id, 60_000, funder_id="state")
    await world.grant(a1.account_id, 50_000, funder_id="region-idf")
    await world.grant(a2.account_id, 200_000, funder_id="state")
    await world.grant(b1.account_id, 150_000, funder_id="state", by=world.agency_b)
    # a lot of a3 that expires unused, through the ledger's sweep at a later instant
    ledger = components_of(world.app.state.runtimes["ledger"], LedgerComponents).ledger
    soon = ledger.clock.now() + timedelta(hours=1)
    await world.grant(a3.account_id, 40_000, funder_id="region-idf", expires_at=soon.isoformat())
    swept = await sweep_once(
        world.app.state.runtimes["ledger"].uow, ledger, soon + timedelta(hours=1)
    )
    assert swept == 1

    enrolments = {
        "a1": await world.enrolled(PROVIDER, a1.account_id, course_ict),
        "a2": await world.enrolled(PROVIDER, a2.account_id, course_eng),
        "b1": await world.enrolled(PROVIDER, b1.account_id, course_ict),
    }
    assert {e["status"] for e in enrolments.values()} == {"confirmed"}
    claims = {}
    for name, e in enrolments.items():
        world.session_over(e)
        r = await world.claim(PROVIDER, e["enrolment_id"])
        assert r.status_code == 202, r.text
        claims[name] = await world.captured(r.json()["claim_id"])
    await world.attest(claims["a1"]["claim_id"])
    await world.attest(claims["b1"]["claim_id"])
    r = await world.c.post(
        f"/v1/claims/{claims['a2']['claim_id']}/contest",
        headers=world.learner(a2.account_id),
        json={"reason_code": "did_not_attend"},
    )
    assert r.status_code == 200 and r.json()["status"] == "held", r.text
    run = await world.released_run()
    assert len(run["payouts"]) == 1, run

    people = [
        Person(a1.account_id, "a", a1.region, a1.birth_year, a1.tier, ("0613",)),
        Person(a2.account_id, "a", a2.region, a2.birth_year, a2.tier, ("0715",)),
        a3,
        a4,
        Person(b1.account_id, "b", b1.region, b1.birth_year, b1.tier, ("0613",)),
        b2,
    ]
    return {
        "year": year,
        "people": people,
        "enrolments": {k: await world.enrolment(e["enrolment_id"]) for k, e in enrolments.items()},
        "claims": {k: await world.claim_status(c["claim_id"]) for k, c in claims.items()},
        "run": run,
    }


async def dashboard_json(world: World, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await world.c.get("/dashboard/export.json", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def participation_of(view: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r["dimension"], r["group"]): (r["holders"], r["trained"]) for r in view["rows"]}


async def test_dashboard_figures_equal_those_computed_from_the_audit_stream(
    db_url: str,
) -> None:
    async with serve_everything(db_url) as world:
        known = await populate(world)
        year, people = known["year"], known["people"]
        # accounts learn who trained from payments' events: wait until they all arrived
        await eventually(
            lambda: dashboard_json(world, world.auditor, year=year, view="participation"),
            lambda d: d["views"]["participation"]["rows"][0]["trained"] == 3,
        )
        national = await dashboard_json(world, world.auditor, year=year)
        events = await audit_stream(world.c, world.auditor)

        # participation, against the accounts the test opened
        got = participation_of(national["views"]["participation"])
        assert got == participation(people, year)
        assert got[("all", "all")] == (6, 3)
        assert got[("isced_field", "06")] == (6, 2)
        share = national["views"]["participation"]["rows"][0]
        assert share["share_percent"] == 50.0 and share["target_percent"] == 60

        # money, against the ledger's own audit stream summed by funder and year
        expected = {k: v for k, v in ledger_sums(events).items() if k[0] == year}
        assert money_rows(national["views"]["money"], year) == expected
        assert expected[(year, "state")]["granted"] == 60_000 + 200_000 + 150_000
        assert expected[(year, "region-idf")]["expired"] == 40_000
        assert sum(v["spent"] for v in expected.values()) > 0

        # activity, against the records the services answered with
        activity = {r["month"]: r for r in national["views"]["activity"]["rows"]}
        enrolled = Counter(month(e["confirmed_at"]) for e in known["enrolments"].values())
        completed = Counter(month(c["captured_at"]) for c in known["claims"].values())
        paid_claims = [c for c in known["claims"].values() if c["status"] in ("in_payout", "paid")]
        for m, row in activity.items():
            assert row["enrolments"] == enrolled.get(m, 0), m
            assert row["completions"] == completed.get(m, 0), m
        assert sum(r["payouts"] for r in activity.values()) == 1
        assert sum(r["paid"] for r in activity.values()) == sum(c["amount"] for c in paid_claims)
        assert len(paid_claims) == 2
        assert sum(p["amount"] for p in known["run"]["payouts"]) == sum(
            c["amount"] for c in paid_claims
        )

        # fraud holds: the contested claim
        holds = national["views"]["holds"]["rows"]
        assert [(r["held"], r["count"]) for r in holds] == [("claims", 1)]
        assert holds[0]["amount"] == known["claims"]["a2"]["amount"]

        # the CSV export, read by a CSV reader, gives the same numbers
        r = await world.c.get(
            "/dashboard/export.csv", params={"view": "money", "year": year}, headers=world.auditor
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        from_csv = {
            (int(row["year"]), row["funder_id"]): {
                f: int(row[f]) for f in expected[(year, "state")]
            }
            for row in read_csv(r.text)
        }
        assert from_csv == expected
        r = await world.c.get(
            "/dashboard",
            params={"view": "participation", "year": year},
            headers={**world.auditor, "Accept": "text/csv"},
        )
        rows = read_csv(r.text)
        assert {
            (row["dimension"], row["group"]): (int(row["holders"]), int(row["trained"]))
            for row in rows
        } == participation(people, year)

        # a region, for a national role
        bretagne = await dashboard_json(world, world.auditor, year=year, region="Bretagne")
        assert participation_of(bretagne["views"]["participation"]) == participation(
            people, year, "Bretagne"
        )

        # the page itself: charts and tables, without a script
        r = await world.c.get("/dashboard", params={"year": year}, headers=world.auditor)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.text.count('role="img"') >= 8 and "<script" not in r.text
        assert "target 60%" in r.text and 'name="region"' in r.text

        # an agency sees only the accounts it manages
        mine = await dashboard_json(world, world.agency, year=year)
        assert mine["agency_id"] == "pes-fr"
        assert participation_of(mine["views"]["participation"]) == participation(
            [p for p in people if p.agency == "a"], year
        )
        own = [p.account_id for p in people if p.agency == "a"]
        own_money = {k: v for k, v in ledger_sums(events, own).items() if k[0] == year}
        assert money_rows(mine["views"]["money"], year) == own_money
        assert own_money != expected  # agency b's grant and spending are left out
        mine_activity = mine["views"]["activity"]["rows"]
        assert sum(r["enrolments"] for r in mine_activity) == 2
        assert sum(r["paid"] for r in mine_activity) == known["claims"]["a1"]["amount"]
        page = await world.c.get("/dashboard", params={"year": year}, headers=world.agency)
        assert page.status_code == 200 and 'name="region"' not in page.text
        other = await dashboard_json(world, world.agency_b, year=year)
        assert other["views"]["holds"]["rows"] == []
        assert participation_of(other["views"]["participation"])[("all", "all")] == (2, 1)


async def test_the_dashboard_refuses_providers_learners_and_bad_filters(db_url: str) -> None:
    async with serve_everything(db_url) as world:
        for headers in (
            world.provider(PROVIDER),
            world.learner(new_id()),
            bearer(world.settings, "finance"),
        ):
            for path in ("/dashboard", "/dashboard/export.json"):
                r = await world.c.get(path, headers=headers)
                assert r.status_code == 403, (path, r.text)
            r = await world.c.get("/dashboard/export.csv?view=money", headers=headers)
            assert r.status_code == 403, r.text
        for service in ("accounts", "ledger", "payments", "catalogue"):
            r = await world.c.get(f"/v1/{service}/statistics", headers=world.provider(PROVIDER))
            assert r.status_code == 403, r.text
        assert (await world.c.get("/dashboard")).status_code == 401
        for query in ("year=abc", "year=1800", "view=nope", "region=" + "x" * 200):
            for path in ("/dashboard", "/dashboard/export.json", "/dashboard/export.csv"):
                r = await world.c.get(f"{path}?{query}", headers=world.auditor)
                assert 400 <= r.status_code < 500, (path, query, r.text)
        r = await world.c.get("/dashboard/export.csv", headers=world.auditor)
        assert r.status_code == 422  # which view
        r = await world.c.get("/v1/accounts/statistics?year=abc", headers=world.auditor)
        assert r.status_code == 422


async def test_the_dashboard_counts_guidance_plans_and_validations(db_url: str) -> None:
    async with serve_everything(db_url) as world:
        learner = await world.account(credit=500_000)
        # a guidance session and the plan it led to (payments)
        guidance = await world.course("prov-guide", price=30_000, starts_in=-1, kind="guidance")
        session = await world.enrolled("prov-guide", learner, guidance)
        r = await world.c.post(
            f"/v1/enrolments/{session['enrolment_id']}/guidance-outcome",
            headers=world.provider("prov-guide"),
            json={"skills": [{"label": "plan a career change"}]},
        )
        assert r.status_code == 201, r.text
        plan_month = r.json()["recorded_at"][:7]

        # a validation of prior learning: the provider and its course in the catalogue, the
        # enrolment in payments, the validation in the catalogue again (all over the bus)
        r = await world.c.post("/v1/providers", json=provider_body(), headers=world.agency)
        assert r.status_code == 201, r.text
        provider_id = r.json()["provider_id"]
        r = await world.c.post(
            f"/v1/providers/{provider_id}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=world.agency,
        )
        assert r.status_code == 200, r.text
        provider = world.provider(provider_id)
        body = course_body(kind="validation")
        r = await world.c.post("/v1/courses", json=body, headers=provider)
        assert r.status_code == 201, r.text
        course_id = r.json()["course_id"]
        assert (await world.c.post(f"/v1/courses/{course_id}/submit", headers=provider)).is_success
        r = await world.c.post(
            f"/v1/courses/{course_id}/approve",
            json={"reason_code": "meets_criteria"},
            headers=world.agency,
        )
        assert r.status_code == 200, r.text

        async def proposed() -> Any:
            return await world.propose(
                provider_id, learner, (course_id, body["sessions"][0]["session_id"])
            )

        r = await eventually(proposed, lambda r: r.status_code == 202)
        enrolment = await world.enrolled_existing(learner, r.json()["enrolment_id"])
        assert enrolment["status"] == "confirmed"

        async def validated() -> Any:
            return await world.c.post(
                "/v1/validations",
                headers=provider,
                json={
                    "enrolment_id": enrolment["enrolment_id"],
                    "learning_outcomes": ["Weld steel plates safely"],
                    "eqf_level": 4,
                    "assessment": {
                        "method": "observation",
                        "assessed_on": date.today().isoformat(),
                        "assessor_body": "Chambre de métiers",
                    },
                },
            )

        r = await eventually(validated, lambda r: r.status_code == 201)
        validation_month = r.json()["recorded_at"][:7]

        national = await dashboard_json(world, world.auditor, view="guidance")
        rows = {row["month"]: row for row in national["views"]["guidance"]["rows"]}
        assert sum(row["guidance_plans"] for row in rows.values()) == 1
        assert rows[plan_month]["guidance_plans"] == 1
        assert sum(row["validations"] for row in rows.values()) == 1
        assert rows[validation_month]["validations"] == 1
        assert rows[validation_month]["validations_eqf_4"] == 1
        assert sum(row["validations_eqf_3"] for row in rows.values()) == 0

        r = await world.c.get(
            "/dashboard/export.csv", params={"view": "guidance"}, headers=world.auditor
        )
        assert r.status_code == 200, r.text
        from_csv = {row["month"]: row for row in read_csv(r.text)}
        assert int(from_csv[validation_month]["validations_eqf_4"]) == 1
        assert int(from_csv[plan_month]["guidance_plans"]) == 1
        page = await world.c.get("/dashboard", headers=world.auditor)
        assert page.status_code == 200 and "Guidance plans" in page.text
        assert page.text.count('role="img"') >= 10

        # another agency's accounts: none of them
        other = await dashboard_json(world, world.agency_b, view="guidance")
        assert all(
            row["guidance_plans"] == 0 and row["validations"] == 0
            for row in other["views"]["guidance"]["rows"]
        )
