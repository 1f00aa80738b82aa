"""What a demonstration cohort's year brings, through the public API: enrolments proposed
by providers and answered by learners, completions claimed, captured and attested or
contested, a payout run released by finance (four eyes), the credentials issued.

What happens asynchronously (the reservation saga, the ledger's captures, the catalogue's
credentials) is awaited in rounds: everything is asked at once, then one listing tells
what is still under way, so the waiting costs the system a few requests, not one per
enrolment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from ila.demo_api import DemoError, gather_bounded, key, problem_code
from ila.demo_plan import Proposal
from ila.demo_steps import Cohort

CONTEST_REASONS = ("did_not_attend", "did_not_complete", "wrong_dates")
CANCEL_REASONS = ("schedule_conflict", "found_work", "health", "changed_mind")
# payments has not heard of the account, course or provider yet: its read models follow
WAITING = {"account_not_found", "course_not_found", "provider_unknown", "session_not_found"}


async def rounds(
    c: Cohort,
    items: Iterable[int],
    attempt: Callable[[int], Awaitable[bool]],
    what: str,
) -> None:
    """``attempt`` each item (True: done), again for those not done after a pause that
    grows, until all are done or the cohort's patience is spent."""
    pending = list(items)
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + c.api.patience, 0.5
    while pending:
        done = await gather_bounded(attempt(i) for i in pending)
        pending = [i for i, ok in zip(pending, done, strict=True) if not ok]
        if pending and loop.time() > deadline:
            raise DemoError(f"{what}: {len(pending)} still waiting after {c.api.patience:.0f}s")
        if pending:
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 3.0)


async def listed(c: Cohort, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of a paged listing."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        sep = "&" if "?" in path else "?"
        page = await c.api.call(
            "GET", f"{path}{sep}limit=500{'&after=' + after if after else ''}", headers
        )
        items += page["items"]
        after = page["next"]
        if not after:
            return items


async def settled(c: Cohort, path: str, status: str, ours: set[str], id_field: str) -> None:
    """Wait until none of ``ours`` is listed with ``status`` (a saga under way)."""

    async def probe(_: int) -> bool:
        busy = await listed(c, f"{path}?status={status}", c.api.admin)
        return not any(str(item[id_field]) in ours for item in busy)

    await rounds(c, [0], probe, f"{path} {status}")


async def propose_all(c: Cohort, wave: int) -> None:
    """Providers propose; a proposal payments cannot place yet is asked again."""
    todo = [i for i, p in enumerate(c.plan.proposals) if p.wave == wave and c.account(p)]

    async def one(index: int) -> bool:
        prop = c.plan.proposals[index]
        body = {
            "account_id": c.account(prop),
            "course_id": c.course_id(prop.course),
            "session_id": str(prop.session_id),
        }
        provider = c.api.provider(c.provider_ids[prop.course.provider.index])
        r = await c.api.send("POST", "/v1/enrolments", provider, json=body)
        if r.status_code != 202:
            if problem_code(r) in WAITING:
                return False
            raise DemoError(f"POST /v1/enrolments: {r.status_code} {r.text[:300]}")
        c.enrolments[index] = r.json()
        c.counts[f"enrolments proposed ({r.json()['status']})"] += 1
        return True

    if wave == 1:
        await rounds(c, todo, one, "enrolment proposals")
        return
    for index in todo:  # one by one: those past the hourly rule are held
        await rounds(c, [index], one, "an enrolment proposal")


async def refresh_enrolments(c: Cohort) -> None:
    """The enrolments as payments now has them (listed by each provider)."""
    index_of = {str(e["enrolment_id"]): i for i, e in c.enrolments.items()}
    lists = await gather_bounded(
        listed(c, "/v1/enrolments", c.api.provider(pid)) for pid in c.provider_ids.values()
    )
    for item in (item for items in lists for item in items):
        if str(item["enrolment_id"]) in index_of:
            c.enrolments[index_of[str(item["enrolment_id"])]] = item


async def answer_all(c: Cohort) -> None:
    """The learners answer: consent (paying what the credit does not cover), refusal, none
    yet; once the ledger has reserved, a few cancel within the withdrawal period."""
    api = c.api

    async def answer(index: int, prop: Proposal, enrolment: dict[str, Any]) -> None:
        eid, learner = enrolment["enrolment_id"], api.learner(str(c.account(prop)))
        if prop.outcome == "refuse":
            await api.call("POST", f"/v1/enrolments/{eid}/refuse", learner)
        elif prop.outcome != "wait":
            body = {"accept_co_payment": True}
            await api.call("POST", f"/v1/enrolments/{eid}/confirm", learner, json=body)

    asked = [
        (i, c.plan.proposals[i], e)
        for i, e in c.enrolments.items()
        if e["status"] == "awaiting_learner_confirmation"
    ]
    await gather_bounded(answer(*a) for a in asked)
    ours = {str(e["enrolment_id"]) for _, _, e in asked}
    await settled(c, "/v1/enrolments", "reserving", ours, "enrolment_id")
    await refresh_enrolments(c)

    async def cancel(index: int, enrolment: dict[str, Any]) -> None:
        learner = api.learner(str(enrolment["account_id"]))
        reason = {"reason_code": CANCEL_REASONS[index % len(CANCEL_REASONS)]}
        eid = enrolment["enrolment_id"]
        await api.call("POST", f"/v1/enrolments/{eid}/cancel", learner, json=reason)

    cancelling = [
        (i, e)
        for i, e in c.enrolments.items()
        if e["status"] == "confirmed" and c.plan.proposals[i].outcome == "cancel"
    ]
    await gather_bounded(cancel(*x) for x in cancelling)
    await refresh_enrolments(c)
    for e in c.enrolments.values():
        c.counts[f"enrolments {e['status']}"] += 1


async def claims(c: Cohort) -> None:
    """Once the sessions are over, the providers claim the completions with evidence; the
    ledger captures; the learners attest or contest."""
    wait = (c.ends_now - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.5)
    api = c.api
    due = [
        i
        for i, e in c.enrolments.items()
        if e["status"] == "confirmed" and c.plan.proposals[i].when == "now"
    ]

    async def submit(index: int) -> None:
        prop, enrolment = c.plan.proposals[index], c.enrolments[index]
        started = date.fromisoformat(enrolment["starts_on"])
        ended = date.fromisoformat(enrolment["ends_on"])
        hours = prop.course.kind.hours * prop.completion_rate // 100
        evidence = {
            "started_on": started.isoformat(),
            "completed_on": ended.isoformat(),
            "completion_rate": prop.completion_rate,
            "attendance_hours": min(hours, ((ended - started).days + 1) * 8),
            "certified": prop.certified,
            "grade": "pass" if prop.certified else None,
        }
        body = {"enrolment_id": enrolment["enrolment_id"], "milestone": "completion"}
        c.claims[index] = await api.call(
            "POST",
            "/v1/claims",
            api.provider(c.provider_ids[prop.course.provider.index]),
            json={**body, "evidence": evidence},
            idempotency=key("claim", c.seed, c.number, index),
        )

    await gather_bounded(submit(i) for i in due)
    ours = {str(cl["claim_id"]) for cl in c.claims.values()}
    await settled(c, "/v1/claims", "approved", ours, "claim_id")
    index_of = {str(cl["claim_id"]): i for i, cl in c.claims.items()}
    lists = await gather_bounded(
        listed(c, "/v1/claims", api.provider(pid)) for pid in c.provider_ids.values()
    )
    for item in (item for items in lists for item in items):
        if str(item["claim_id"]) in index_of:
            c.claims[index_of[str(item["claim_id"])]] = item

    async def attest(index: int, claim: dict[str, Any]) -> None:
        prop = c.plan.proposals[index]
        learner = api.learner(str(c.account(prop)))
        path = f"/v1/claims/{claim['claim_id']}"
        if prop.attest == "attest":
            await api.call("POST", f"{path}/attest", learner)
            c.counts["claims attested by the learner"] += 1
        elif prop.attest == "contest":
            reason = {"reason_code": CONTEST_REASONS[index % len(CONTEST_REASONS)]}
            await api.call("POST", f"{path}/contest", learner, json=reason)
            c.counts["claims contested by the learner (held)"] += 1

    for cl in c.claims.values():
        c.counts[f"claims {cl['status']}"] += 1
    await gather_bounded(attest(i, cl) for i, cl in c.claims.items() if cl["status"] == "captured")


async def pay(c: Cohort) -> None:
    """A payout run (every payable claim of the country), proposed by an administrator and
    released by finance; the SEPA credit-transfer file of one payout is fetched."""
    api = c.api
    r = await api.send(
        "POST", "/v1/payouts/runs", api.admin, json={}, idempotency=key("run", c.seed, c.number)
    )
    if r.status_code != 202:
        raise DemoError(f"POST /v1/payouts/runs: {r.status_code} {r.text[:300]}")
    run = r.json()
    if run["status"] == "empty":
        return
    await api.approve(run, "/v1/payments/approvals", r)
    released = await api.call("GET", f"/v1/payouts/runs/{run['run_id']}", api.admin)
    c.payouts = released["payouts"]
    c.counts["payouts sent"] += sum(1 for p in c.payouts if p["status"] == "sent")
    c.counts["paid to providers (EUR)"] += sum(p["amount"] for p in c.payouts) // 100
    for payout in c.payouts:
        if payout["status"] == "sent" and payout["amount"] > 0:
            r = await api.send("GET", f"/v1/payouts/{payout['payout_id']}/sepa", api.admin)
            c.sepa_checked = r.status_code == 200 and b"pain.001" in r.content
            break


async def credentials(c: Cohort) -> None:
    """The catalogue issues a micro-credential for each certified completion captured."""
    api = c.api
    due = [
        i
        for i, cl in c.claims.items()
        if c.plan.proposals[i].certified and cl["status"] in ("captured", "in_payout", "paid")
    ]

    async def one(index: int) -> bool:
        account_id = str(c.account(c.plan.proposals[index]))
        r = await api.send("GET", "/v1/credentials", api.learner(account_id))
        if r.status_code == 200 and r.json():
            c.credentialed.add(index)
            return True
        return False

    try:
        await rounds(c, due, one, "credentials")
    finally:
        c.counts["credentials issued"] += len(c.credentialed)
