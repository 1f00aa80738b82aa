"""The ledger's HTTP API on the real database, all services in one process."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.pseudonym import pseudonymous_actor
from tests.integration.support.ledger import THIS_YEAR, Api
from tests.support import bearer

pytestmark = pytest.mark.postgres


async def test_grants_balance_entries_and_point_in_time(api: Api) -> None:
    account = await api.account()
    r = await api.grant(
        account, 30_000, expires_at=(datetime.now(UTC) + timedelta(days=400)).isoformat()
    )
    assert r.status_code == 201, r.text
    before_second = datetime.now(UTC)
    await asyncio.sleep(0.01)
    assert (await api.grant(account, 12_345)).status_code == 201
    b = await api.balance(account)
    assert b["available"] == 42_345 and b["granted_total"] == 42_345 and b["reserved"] == 0
    assert len(b["lots"]) == 2  # type: ignore[arg-type]
    past = await api.balance(account, as_of=before_second.isoformat())
    assert past["available"] == 30_000
    assert (await api.balance(account, as_of="2000-01-01T00:00:00Z"))["available"] == 0
    r = await api.c.get(f"/v1/ledger/accounts/{account}/entries", headers=api.auditor)
    items = r.json()["items"]
    assert [i["version"] for i in items] == list(range(1, len(items) + 1))
    assert items[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(items))
    # a learner sees their own, not someone else's
    learner = bearer(api.settings, "learner", sub=account)  # type: ignore[arg-type]
    assert (
        await api.c.get(f"/v1/ledger/accounts/{account}/balance", headers=learner)
    ).status_code == 200
    other = await api.account()
    assert (
        await api.c.get(f"/v1/ledger/accounts/{other}/balance", headers=learner)
    ).status_code == 404
    assert (
        await api.c.get(f"/v1/ledger/accounts/{account}/balance", headers=api.other_agency)
    ).status_code == 404
    assert (
        await api.c.get(f"/v1/ledger/accounts/{account}/balance", headers=api.provider)
    ).status_code == 403


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"funder_id": ""}, "funder_id"),
        ({"account_id": "nope"}, "account_id"),
        ({"note": "x" * 5000}, "note"),
        ({"reason_code": "statutory"}, "reason_code"),
        ({"reason_code": "because"}, "reason_code"),
        ({"earmark": {"eqf_levels": [12]}}, "earmark"),
        ({"surprise": 1}, "surprise"),
        # an expiry without a time zone, or one with no UTC equivalent
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:00:00-05:00"}, "expires_at"),
    ],
)
async def test_bad_grants_are_refused_and_change_nothing(
    api: Api, body: dict[str, object], field: str
) -> None:
    account = await api.account()
    payload = {
        "account_id": account,
        "amount": 1000,
        "funder_id": "f",
        "reason_code": "top_up",
        **body,
    }
    headers = {**api.agency, "Idempotency-Key": str(uuid.uuid4())}
    r = await api.c.post("/v1/ledger/grants", json=payload, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.text
    assert (await api.balance(account))["granted_total"] == 0


async def test_grant_to_unknown_account_and_wrong_roles(api: Api) -> None:
    r = await api.grant(str(uuid.uuid4()), 100)
    assert r.status_code == 404
    account = await api.account()
    for headers, status in (
        (api.provider, 403),
        (api.auditor, 403),
        (api.finance, 403),
        (api.qa, 403),
        (api.funder, 403),
        ({}, 401),
        (api.other_agency, 404),
    ):
        r = await api.c.post(
            "/v1/ledger/grants",
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            json={"account_id": account, "amount": 1, "funder_id": "f", "reason_code": "top_up"},
        )
        assert r.status_code == status, (headers, r.text)
    # without an Idempotency-Key a grant is refused before anything is done
    r = await api.c.post(
        "/v1/ledger/grants",
        headers=api.agency,
        json={"account_id": account, "amount": 1, "funder_id": "f", "reason_code": "top_up"},
    )
    assert r.status_code == 428
    assert r.headers["content-type"] == "application/problem+json"
    assert (await api.balance(account))["granted_total"] == 0


async def test_a_grant_retried_with_its_idempotency_key_is_applied_once(api: Api) -> None:
    account = await api.account()
    headers = {**api.agency, "Idempotency-Key": "grant-77"}
    body = {
        "account_id": account,
        "amount": 5_000,
        "funder_id": "employer-9",
        "reason_code": "top_up",
    }
    responses = await asyncio.gather(
        *(api.c.post("/v1/ledger/grants", json=body, headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["lot_id"] for r in responses}) == 1
    assert (await api.balance(account))["available"] == 5_000
    r = await api.c.post("/v1/ledger/grants", json={**body, "amount": 6_000}, headers=headers)
    assert r.status_code == 422


async def test_policy_allocation_and_stats(api: Api) -> None:
    low = await api.account(qualification_level=2, need_flags=[])
    high = await api.account(qualification_level=6, need_flags=[], employment_status="employed")
    this, following = THIS_YEAR, THIS_YEAR + 1
    approved = await api.policy(
        this, base_amount=60_000, cap=100_000, enhanced_amount=90_000, enhanced_cap=150_000
    )
    assert approved["result"] == {"year": this}
    await api.policy(following, cap=100_000, enhanced_cap=150_000)  # default amounts, lower caps
    policy = (await api.c.get(f"/v1/ledger/policies/{this}", headers=api.agency)).json()
    assert policy["base_amount"] == 60_000
    # who proposed and who approved, as keyed pseudonyms
    pepper = api.settings.actor_pepper
    assert policy["proposed_by"] == pseudonymous_actor("admin:admin-ada", pepper)
    assert policy["approved_by"] == pseudonymous_actor("finance:fin-frank", pepper)
    assert policy["approval_id"] == approved["approval_id"]
    assert (
        await api.c.put(f"/v1/ledger/policies/{this}", headers=api.agency, json={})
    ).status_code == 403
    assert (
        await api.c.put(f"/v1/ledger/policies/{this}", headers=api.admin, json={"base_amount": -1})
    ).status_code == 422
    for year in (this, following, this):
        run = await api.allocate(year)
        assert run["status"] == "finished", run
        assert run["approved_by"] == pseudonymous_actor("finance:fin-frank", pepper)
        assert run["requested_by"].startswith("agency:p-")
    # this year: 60,000 / 90,000; next: 50,000 / 80,000 but capped at 100,000 / 150,000 held
    assert (await api.balance(high))["available"] == 100_000
    assert (await api.balance(low))["available"] == 150_000
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]
    stats = (await api.c.get("/v1/ledger/stats", headers=api.auditor)).json()
    assert sum(f["granted"] for y in stats["years"] for f in y["by_funder"].values()) == 250_000


async def test_reversal_of_a_grant_and_the_audit_stream(api: Api) -> None:
    account = await api.account()
    lot = (await api.grant(account, 9_000)).json()["lot_id"]
    body = {"target": {"kind": "grant", "lot_id": lot}, "reason_code": "wrong_amount"}
    url = f"/v1/ledger/accounts/{account}/reversals"
    assert (await api.c.post(url, headers=api.admin, json=body)).status_code == 428
    key = {"Idempotency-Key": "rev-1"}
    r = await api.c.post(url, headers={**api.admin, **key}, json=body)
    assert r.status_code == 202, r.text
    proposal = r.json()
    assert proposal["action"] == "reversal"
    assert proposal["subject"] == f"reversal:{account}:grant:{lot}"
    assert (await api.balance(account))["available"] == 9_000  # proposed, not done
    replayed = await api.c.post(url, headers={**api.admin, **key}, json=body)
    assert replayed.json()["approval_id"] == proposal["approval_id"]
    approved = await api.approve(proposal["approval_id"])
    assert approved.status_code == 200, approved.text
    assert (await api.balance(account))["available"] == 0
    again = await api.c.post(
        url,
        headers={**api.admin, "Idempotency-Key": "rev-2"},
        json={"target": {"kind": "grant", "lot_id": lot}, "reason_code": "other"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (
        await api.c.post(url, headers={**api.agency, "Idempotency-Key": "rev-3"}, json=body)
    ).status_code == 403
    page = (
        await api.c.get("/v1/ledger/audit/events", params={"limit": 2}, headers=api.auditor)
    ).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = (
        await api.c.get(
            "/v1/ledger/audit/events", params={"after": page["next"]}, headers=api.auditor
        )
    ).json()["items"]
    r = await api.c.get(
        "/v1/ledger/audit/events", headers={**api.auditor, "Accept": "application/x-ndjson"}
    )
    assert r.headers["content-type"].startswith("application/x-ndjson")
    streamed = [json.loads(line) for line in r.text.splitlines()]
    assert [e["position"] for e in streamed] == [e["position"] for e in page["items"] + rest]
    assert any(e["type"].endswith("EntryReversed.v2") for e in streamed)
    assert (await api.c.get("/v1/ledger/audit/events", headers=api.agency)).status_code == 403
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"] and report["events"] == len(streamed)
