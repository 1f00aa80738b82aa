"""Credit only by the rules: no allocation without an approved policy, only for the current or
next year, bounded policy amounts, and a run that fails says why instead of running forever."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from services.ledger.domain import MAX_POLICY_AMOUNT
from services.ledger.handlers import allocation
from services.ledger.store import runs
from tests.integration.support.ledger import THIS_YEAR, Api

pytestmark = pytest.mark.postgres


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


async def test_far_years_and_a_huge_policy_are_refused_and_change_nothing(api: Api) -> None:
    """Issue 9, scenario 1, replayed as written: an agency starts allocations for 2190, 2191
    and 2192, where no policy is stored; ten calls would have taken every account to its cap;
    a policy amount of 10^25 left a run ``running`` forever."""
    accounts = [await api.account() for _ in range(3)]
    await api.grant(accounts[0], 12_000)
    await api.policy(THIS_YEAR, base_amount=40_000)
    assert (await api.allocate(THIS_YEAR))["status"] == "finished"
    before = await api.snapshot()
    balances = [await api.balance(a) for a in accounts]
    assert [b["available"] for b in balances] == [92_000, 80_000, 80_000]  # enhanced amount

    for year in (2190, 2191, 2192):
        body = problem(await api.propose_allocation(year), 422, "allocation_year_not_open")
        assert body["errors"][0]["field"] == "year"
        assert str(THIS_YEAR) in body["detail"]
    for year in range(2190, 2200):  # "about ten calls take every account to its cap"
        for who in (api.agency, api.admin):
            problem(await api.propose_allocation(year, who), 422, "allocation_year_not_open")
    # the next year is open, but has no approved policy: no defaults are ever used
    problem(await api.propose_allocation(THIS_YEAR + 1), 409, "no_approved_policy")
    problem(
        await api.c.get(f"/v1/ledger/policies/{THIS_YEAR + 1}", headers=api.agency),
        404,
        "no_approved_policy",
    )
    problem(
        await api.c.get("/v1/ledger/policies/2190", headers=api.admin), 404, "no_approved_policy"
    )
    # a policy amount of 10^25, as the admin or as the agency
    for year in (2190, THIS_YEAR + 1):
        r = await api.c.put(
            f"/v1/ledger/policies/{year}", headers=api.admin, json={"base_amount": 10**25}
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == ["base_amount"]
        r = await api.c.put(
            f"/v1/ledger/policies/{year}", headers=api.agency, json={"base_amount": 10**25}
        )
        assert r.status_code == 403

    assert await api.snapshot() == before
    assert [await api.balance(a) for a in accounts] == balances


@pytest.mark.parametrize(
    "terms, field",
    [
        ({"base_amount": MAX_POLICY_AMOUNT + 1}, "base_amount"),
        ({"cap": 10**25}, "cap"),
        ({"enhanced_amount": 10**25}, "enhanced_amount"),
        ({"enhanced_cap": MAX_POLICY_AMOUNT + 1}, "enhanced_cap"),
        ({"supplements": {"unemployed": MAX_POLICY_AMOUNT + 1}}, "supplements.unemployed"),
        # a policy favours needs the ledger sees (low qualification, employment status,
        # need tier): a need flag never reaches it, so naming one is refused
        ({"supplements": {"disability": 1}}, "supplements.disability.[key]"),
        ({"enhanced_needs": ["low_qualification", "disability"]}, "enhanced_needs.1"),
        ({"supplements": {"Not A Code": 1}}, "supplements.Not A Code.[key]"),
        ({"base_amount": -1}, "base_amount"),
        ({"base_amount": 1.5}, "base_amount"),
        ({"lot_lifetime_years": 500}, "lot_lifetime_years"),
        ({"funder_id": "x" * 101}, "funder_id"),
        ({"year": 2031}, "year"),
    ],
)
async def test_policy_amounts_caps_and_supplements_are_bounded(
    api: Api, terms: dict[str, object], field: str
) -> None:
    r = await api.c.put(f"/v1/ledger/policies/{THIS_YEAR}", headers=api.admin, json=terms)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert (await api.snapshot())["approvals"] == []
    # the largest amounts allowed are accepted (as a proposal)
    r = await api.c.put(
        f"/v1/ledger/policies/{THIS_YEAR}",
        headers=api.admin,
        json={"base_amount": MAX_POLICY_AMOUNT, "cap": MAX_POLICY_AMOUNT},
    )
    assert r.status_code == 202, r.text


async def test_a_policy_and_an_allocation_take_two_people(api: Api) -> None:
    account = await api.account(qualification_level=6, need_flags=[], employment_status="employed")
    r = await api.c.put(
        f"/v1/ledger/policies/{THIS_YEAR}", headers=api.admin, json={"base_amount": 70_000}
    )
    assert r.status_code == 202, r.text
    policy_proposal = r.json()
    assert r.headers["location"] == f"/v1/ledger/approvals/{policy_proposal['approval_id']}"
    assert policy_proposal["action"] == "policy"
    assert policy_proposal["subject"] == f"policy:{THIS_YEAR}"
    assert policy_proposal["summary"]["base_amount"] == 70_000
    # proposed is not approved: no policy yet, so no allocation
    body = problem(
        await api.c.get(f"/v1/ledger/policies/{THIS_YEAR}", headers=api.admin),
        404,
        "no_approved_policy",
    )
    assert body["pending_approval_id"] == policy_proposal["approval_id"]
    problem(await api.propose_allocation(THIS_YEAR), 409, "no_approved_policy")
    again = await api.c.put(f"/v1/ledger/policies/{THIS_YEAR}", headers=api.admin, json={})
    problem(again, 409, "proposal_pending")
    assert (await api.approve(policy_proposal["approval_id"])).status_code == 200

    r = await api.propose_allocation(THIS_YEAR, api.admin)
    assert r.status_code == 202, r.text
    proposal = r.json()
    assert (proposal["action"], proposal["subject"]) == ("allocation", f"allocation:{THIS_YEAR}")
    assert proposal["summary"]["policy_approval_id"] == policy_proposal["approval_id"]
    queue = (await api.c.get("/v1/ledger/approvals?status=pending", headers=api.finance)).json()
    assert [p["approval_id"] for p in queue["items"]] == [proposal["approval_id"]]
    problem(await api.propose_allocation(THIS_YEAR), 409, "proposal_pending")
    await asyncio.sleep(0.3)  # nothing runs before the approval
    assert (await api.snapshot())["allocations"] == []
    assert (await api.balance(account))["available"] == 0

    approved = await api.approve(proposal["approval_id"])
    assert approved.status_code == 200, approved.text
    allocation_id = approved.json()["result"]["allocation_id"]
    run = (await api.c.get(f"/v1/ledger/allocations/{allocation_id}", headers=api.finance)).json()
    if run["status"] == "running":
        run = await _finished(api, allocation_id)
    assert run["status"] == "finished" and run["granted_count"] == 1
    assert run["policy"]["base_amount"] == 70_000
    assert run["approval_id"] == proposal["approval_id"]
    assert (await api.balance(account))["available"] == 70_000
    # last year is closed; the year after next too
    for year in (THIS_YEAR - 1, THIS_YEAR + 2):
        problem(await api.propose_allocation(year), 422, "allocation_year_not_open")


async def _finished(api: Api, allocation_id: str) -> dict[str, Any]:
    for _ in range(200):
        r = await api.c.get(f"/v1/ledger/allocations/{allocation_id}", headers=api.admin)
        if r.json()["status"] != "running":
            return r.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the allocation never ended")


async def test_a_policy_changed_after_the_proposal_cannot_be_allocated(api: Api) -> None:
    await api.policy(THIS_YEAR, base_amount=10_000)
    proposal = (await api.propose_allocation(THIS_YEAR)).json()
    await api.policy(THIS_YEAR, base_amount=90_000)
    problem(await api.approve(proposal["approval_id"]), 409, "policy_changed")
    assert (await api.snapshot())["allocations"] == []


async def test_a_grant_that_fails_ends_the_run_failed_with_its_reason(api: Api) -> None:
    accounts = [await api.account() for _ in range(2)]
    # a wallet whose stream holds an event no version of the ledger knows: granting to it
    # fails (as any error while granting would)
    broken = uuid.uuid4()
    async with api.rt.uow() as s:
        await s.execute(
            text(
                "INSERT INTO ledger.events (event_id, stream_id, version, type, schema_version, "
                "data, metadata, recorded_at, prev_hash, hash) VALUES (:e, :s, 1, "
                "'ledger.Unheard.v1', 1, '{}', '{}', now(), :zero, :zero)"
            ),
            {"e": uuid.uuid4(), "s": broken, "zero": "0" * 64},
        )
        await s.execute(
            text(
                "INSERT INTO ledger.wallets (account_id, status, version, head_hash, available, "
                "reserved, granted_total, spent_total, expired_total, years_granted, updated_at) "
                "VALUES (:a, 'open', 1, :zero, 0, 0, 0, 0, 0, '{}', now())"
            ),
            {"a": broken, "zero": "0" * 64},
        )
    await api.policy(THIS_YEAR)
    run = await api.allocate(THIS_YEAR)
    assert run["status"] == "failed", run
    assert run["failure_code"] == "grant_failed"
    assert "unknown event type" in run["error"]
    assert run["finished_at"] is not None
    # the batch in flight was rolled back: no one was granted anything
    assert [(await api.balance(a))["available"] for a in accounts] == [0, 0]


async def test_a_run_with_an_out_of_bounds_policy_fails_instead_of_running(api: Api) -> None:
    """A run whose stored policy is past the bounds (written before they existed) ends
    ``failed`` with ``invalid_policy``: it never grants and never stays ``running``."""
    account = await api.account()
    allocation_id = uuid.uuid4()
    async with api.rt.uow() as s:
        await runs.create_allocation(
            s,
            allocation_id,
            THIS_YEAR,
            "admin:legacy",
            1,
            policy={"year": THIS_YEAR, "base_amount": 10**25, "enhanced_amount": 10**25},
        )
    await allocation.run_allocation(api.rt.uow, api.ledger, allocation_id)
    run = await _finished(api, str(allocation_id))
    assert run["status"] == "failed"
    assert run["failure_code"] == "invalid_policy"
    assert "base_amount" in run["error"]
    assert (await api.balance(account))["granted_total"] == 0


async def test_the_cli_only_resumes_approved_runs(
    api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ila.cli import app
    from shared.settings import get_settings

    monkeypatch.setenv("ILA_DATABASE_URL", db_url)
    monkeypatch.setenv("ILA_LOG_JSON", "false")
    get_settings.cache_clear()
    runner = CliRunner()
    await api.account()
    before = await api.snapshot()
    try:
        for target in (str(THIS_YEAR), "2190", str(uuid.uuid4())):
            result = await asyncio.to_thread(
                runner.invoke, app, ["ledger", "allocate", target], catch_exceptions=False
            )
            assert result.exit_code == 1, result.output
            assert "no approved allocation" in result.output
        assert await api.snapshot() == before
        await api.policy(THIS_YEAR)
        run = await api.allocate(THIS_YEAR)
        result = await asyncio.to_thread(
            runner.invoke, app, ["ledger", "allocate", run["allocation_id"]]
        )
        assert result.exit_code == 1 and "is finished" in result.output, result.output
    finally:
        get_settings.cache_clear()


async def test_a_restart_resumes_an_approved_run(api: Api) -> None:
    """A run left ``running`` (its process died after the approval committed) is finished
    by the next worker to start, with the policy it was approved with."""
    account = await api.account()
    await api.policy(THIS_YEAR, base_amount=30_000, enhanced_amount=30_000)
    async with api.rt.uow() as s:  # as the approval left it; no worker was woken
        policy = await allocation.approved_policy_for(s, THIS_YEAR)
        assert policy is not None
        allocation_id, created = await allocation.open_run(s, THIS_YEAR, "admin:ada", policy)
    assert created
    restarted = asyncio.create_task(
        allocation.allocation_worker(api.rt.uow, api.ledger, allocation.Waker(), poll_seconds=60)
    )
    try:
        run = await _finished(api, str(allocation_id))
    finally:
        restarted.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await restarted
    assert run["status"] == "finished" and run["granted_amount"] == 30_000
    assert (await api.balance(account))["available"] == 30_000
