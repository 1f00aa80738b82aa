"""The setting-up steps of a demonstration cohort, each through the public API: accounts by
bulk import, providers accredited by quality assurance and their courses approved by their
agency, bank details verified by finance, the year's policy and allocation (four eyes),
funders' top-ups. :mod:`ila.demo_flow` has the year that follows."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ila.demo_api import Api, DemoError, gather_bounded, key
from ila.demo_data import (
    EMPLOYER_FUNDER,
    REGION_FUNDER,
    REGIONS,
    STATE_FUNDER,
    Learner,
    ProviderPlan,
    accounts_csv,
    provider_body,
)
from ila.demo_plan import CohortPlan, CoursePlan, Proposal

POLICY = {
    "base_amount": 60_000,
    "cap": 600_000,
    "low_qualification_max_eqf": 3,
    "enhanced_needs": ["low_qualification", "high"],
    "enhanced_amount": 120_000,
    "enhanced_cap": 1_200_000,
    "supplements": {"unemployed": 30_000, "priority": 20_000},
    "lot_lifetime_years": 2,
    "funder_id": STATE_FUNDER,
}


@dataclass
class Cohort:
    api: Api
    seed: int
    number: int
    people: list[Learner]
    plan: CohortPlan
    ends_now: datetime
    counts: Counter[str] = field(default_factory=Counter)
    accounts: dict[int, str] = field(default_factory=dict)  # learner index -> account id
    provider_ids: dict[int, str] = field(default_factory=dict)
    course_ids: dict[int, str] = field(default_factory=dict)  # id(CoursePlan) -> course id
    enrolments: dict[int, dict[str, Any]] = field(default_factory=dict)  # proposal -> body
    claims: dict[int, dict[str, Any]] = field(default_factory=dict)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    credentialed: set[int] = field(default_factory=set)  # proposals with a credential
    sepa_checked: bool = False

    def account(self, prop: Proposal) -> str | None:
        return self.accounts.get(prop.learner.index)

    def course_id(self, course: CoursePlan) -> str:
        return self.course_ids[id(course)]


async def first_provider(api: Api, plan: ProviderPlan, today: date) -> str | None:
    """Register a cohort's first provider: its id, or None when the cohort exists (its
    registration number is registered already: an earlier run seeded this cohort)."""
    r = await api.send(
        "POST", "/v1/providers", api.agency(plan.region.agency_id), json=provider_body(plan, today)
    )
    if r.status_code == 409 and "provider_id" in r.json():
        return None
    if r.status_code != 201:
        raise DemoError(f"POST /v1/providers: {r.status_code} {r.text[:300]}")
    return str(r.json()["provider_id"])


async def import_accounts(c: Cohort) -> None:
    async def one(region_code: str, agency_id: str) -> None:
        people = [p for p in c.people if p.region.code == region_code]
        if not people:
            return
        report = await c.api.call(
            "POST",
            "/v1/accounts/imports",
            c.api.agency(agency_id),
            content=accounts_csv(people),
            extra_headers={"Content-Type": "text/csv"},
        )
        c.counts["accounts opened"] += report["opened"]
        c.counts["accounts existing"] += report["existing"]
        c.counts["import lines rejected"] += report["rejected_count"]

    await gather_bounded(one(r.code, r.agency_id) for r in REGIONS)


async def map_accounts(c: Cohort) -> None:
    """Account ids by the e-mail address each line carried (the import answers counts)."""
    by_email = {p.email: p.index for p in c.people}

    async def one(agency_id: str) -> None:
        after: str | None = None
        while True:
            query = f"?limit=500{'&after=' + after if after else ''}"
            page = await c.api.call("GET", f"/v1/accounts{query}", c.api.agency(agency_id))
            for item in page["items"]:
                index = by_email.get(str((item.get("personal") or {}).get("email")))
                if index is not None:
                    c.accounts[index] = str(item["account_id"])
            after = page["next"]
            if not after:
                return

    await gather_bounded(one(r.agency_id) for r in REGIONS)


async def register_providers(c: Cohort, first_id: str, today: date) -> None:
    api = c.api
    c.provider_ids[0] = first_id

    async def one(plan: ProviderPlan) -> None:
        if plan.index != 0:
            body = provider_body(plan, today)
            reply = await api.call(
                "POST", "/v1/providers", api.agency(plan.region.agency_id), json=body
            )
            c.provider_ids[plan.index] = str(reply["provider_id"])
        await api.call(
            "POST",
            f"/v1/providers/{c.provider_ids[plan.index]}/accredit",
            api.qa,
            json={"reason_code": "qa_audit_passed"},
        )

    await gather_bounded(one(p) for p in c.plan.providers)
    c.counts["providers accredited"] += len(c.plan.providers)


async def publish_courses(c: Cohort, now: datetime) -> None:
    api = c.api

    async def one(course: CoursePlan) -> None:
        provider = api.provider(c.provider_ids[course.provider.index])
        reply = await api.call("POST", "/v1/courses", provider, json=course.body(now, c.ends_now))
        course_id = str(reply["course_id"])
        await api.call("POST", f"/v1/courses/{course_id}/submit", provider)
        await api.call(
            "POST",
            f"/v1/courses/{course_id}/approve",
            api.agency(course.provider.region.agency_id),
            json={"reason_code": "meets_criteria"},
        )
        c.course_ids[id(course)] = course_id

    await gather_bounded(one(course) for course in c.plan.courses)
    c.counts["courses approved"] += len(c.plan.courses)


async def verify_payees(c: Cohort) -> None:
    """Finance checks each provider's bank details with the bank (verification of payee),
    so the payouts need not wait for the cooling-off period."""
    api = c.api

    async def one(provider_id: str) -> None:
        r = await api.until(
            lambda: api.send("GET", f"/v1/payees/{provider_id}", api.finance),
            lambda r: r.status_code == 200,
            f"the payee of provider {provider_id}",
        )
        await api.call(
            "POST",
            f"/v1/payees/{provider_id}/verification",
            api.finance,
            json={"iban": r.json()["iban"], "result": "match"},
        )

    await gather_bounded(one(pid) for pid in c.provider_ids.values())


async def wallets_open(c: Cohort) -> None:
    """The ledger opened the wallets (from ``AccountOpened``): the last account of each
    region's file and a sample of the others."""
    api = c.api
    last = {p.region.code: p.index for p in c.people}
    rng = random.Random(f"wallets:{c.seed}:{c.number}")
    sample = set(last.values()) | set(rng.sample(sorted(c.accounts), min(20, len(c.accounts))))

    async def one(index: int) -> None:
        account_id = c.accounts[index]
        await api.until(
            lambda: api.send(
                "GET", f"/v1/ledger/accounts/{account_id}/balance", api.learner(account_id)
            ),
            lambda r: r.status_code == 200,
            f"the wallet of {account_id}",
        )

    await gather_bounded(one(i) for i in sample if i in c.accounts)


async def allocate(c: Cohort, year: int) -> dict[str, Any]:
    """The year's policy (kept when one was approved already) and an allocation run, each
    proposed by an administrator and approved by finance."""
    api = c.api
    r = await api.send("GET", f"/v1/ledger/policies/{year}", api.admin)
    if r.status_code == 404:
        r = await api.send("PUT", f"/v1/ledger/policies/{year}", api.admin, json=POLICY)
        await api.approve(r.json(), "/v1/ledger/approvals", r)
        c.counts["policies approved"] += 1
    r = await api.send(
        "POST",
        "/v1/ledger/allocations",
        api.admin,
        json={"year": year},
        idempotency=key("allocation", c.seed, c.number, year),
    )
    decision = await api.approve(r.json(), "/v1/ledger/approvals", r)
    run_id = decision["result"]["allocation_id"]
    r = await api.until(
        lambda: api.send("GET", f"/v1/ledger/allocations/{run_id}", api.admin),
        lambda r: r.status_code == 200 and r.json()["status"] != "running",
        "the allocation run",
        timeout=api.patience * 2,
    )
    run: dict[str, Any] = r.json()
    if run["status"] != "finished":
        raise DemoError(f"the allocation run failed: {run['failure_code']} {run['error']}")
    c.counts["statutory grants"] += run["granted_count"]
    return run


async def top_ups(c: Cohort, now: datetime) -> None:
    """An employer funds transport and technical training for some of its employees in
    Auvergne-Rhône-Alpes; the Hauts-de-France region tops up many of its job seekers."""
    api = c.api
    rng = random.Random(f"topups:{c.seed}:{c.number}")
    grants: list[tuple[Learner, str, int, dict[str, Any] | None, int]] = []
    for p in c.people:
        if p.index not in c.accounts:
            continue
        if p.region.code == "ARA" and p.employment_status == "employed" and rng.random() < 0.2:
            grants.append((p, EMPLOYER_FUNDER, 120_000, {"isced_fields": ["07", "10"]}, 1))
        if p.region.code == "HDF" and p.employment_status == "unemployed" and rng.random() < 0.6:
            grants.append((p, REGION_FUNDER, 80_000, None, 2))

    async def one(p: Learner, funder: str, amount: int, earmark: Any, years: int) -> None:
        body: dict[str, Any] = {
            "account_id": c.accounts[p.index],
            "amount": amount,
            "funder_id": funder,
            "reason_code": "funder_programme",
            "expires_at": datetime(now.year + years, 12, 31, tzinfo=UTC).isoformat(),
        }
        if earmark:
            body["earmark"] = earmark
        await api.call(
            "POST",
            "/v1/ledger/grants",
            api.agency(p.region.agency_id),
            json=body,
            idempotency=key("grant", c.seed, c.number, p.index, funder),
        )
        c.counts[f"top-ups from {funder}"] += 1

    await gather_bounded(one(*g) for g in grants)
