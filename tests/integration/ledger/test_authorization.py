"""Who may see and do what in the ledger, every endpoint and every role, and the four-eyes
rules: the proposer never approves, only finance approves, an expired, refused or already
approved proposal cannot be approved. A refusal by scope looks like a missing account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from shared.pseudonym import pseudonymous_actor
from tests.integration.support.ledger import THIS_YEAR, Api
from tests.support import bearer

pytestmark = pytest.mark.postgres

ROLES = (
    "agency",
    "other_agency",
    "la",
    "lb",
    "admin",
    "finance",
    "auditor",
    "provider",
    "qa",
    "funder",
    "nobody",
)


def who(api: Api, la: str, lb: str) -> dict[str, dict[str, str]]:
    return {
        "agency": api.agency,
        "other_agency": api.other_agency,
        "la": bearer(api.settings, "learner", sub=la),
        "lb": bearer(api.settings, "learner", sub=lb),
        "admin": api.admin,
        "finance": api.finance,
        "auditor": api.auditor,
        "provider": api.provider,
        "qa": api.qa,
        "funder": api.funder,
        "nobody": {},
    }


def expect(default: int, **overrides: int) -> dict[str, int]:  # every role, so no role is forgotten
    statuses = dict.fromkeys(ROLES, default)
    statuses["nobody"] = 401
    statuses.update(overrides)
    return statuses


async def test_the_authorization_matrix(api: Api) -> None:
    la, lb = await api.account(), await api.account()
    lot = (await api.grant(la, 5_000)).json()["lot_id"]
    await api.policy(THIS_YEAR)
    run = await api.allocate(THIS_YEAR)  # proposed by pes-fr
    allocation_id = run["allocation_id"]
    allocation_approval = run["approval_id"]
    h = who(api, la, lb)
    missing = uuid.uuid4()
    reads = [
        (
            f"/v1/ledger/accounts/{la}/balance",
            expect(
                403,
                agency=200,
                other_agency=404,
                la=200,
                lb=404,
                admin=200,
                finance=200,
                auditor=200,
            ),
        ),
        (
            f"/v1/ledger/accounts/{la}/entries",
            expect(
                403,
                agency=200,
                other_agency=404,
                la=200,
                lb=404,
                admin=200,
                finance=200,
                auditor=200,
            ),
        ),
        (
            f"/v1/ledger/accounts/{missing}/balance",
            expect(
                403,
                agency=404,
                other_agency=404,
                la=404,
                lb=404,
                admin=404,
                finance=404,
                auditor=404,
            ),
        ),
        (
            f"/v1/ledger/policies/{THIS_YEAR}",
            expect(403, agency=200, other_agency=200, admin=200, finance=200, auditor=200),
        ),
        (
            f"/v1/ledger/allocations/{allocation_id}",
            expect(403, agency=200, other_agency=404, admin=200, finance=200, auditor=200),
        ),
        (
            f"/v1/ledger/allocations/{missing}",
            expect(403, agency=404, other_agency=404, admin=404, finance=404, auditor=404),
        ),
        (
            "/v1/ledger/approvals",
            expect(
                403,
                agency=200,
                other_agency=200,
                admin=200,
                finance=200,
                auditor=200,
                provider=200,
            ),
        ),
        (
            f"/v1/ledger/approvals/{allocation_approval}",
            expect(
                403,
                agency=200,
                other_agency=404,
                admin=200,
                finance=200,
                auditor=200,
                provider=404,
            ),
        ),
        ("/v1/ledger/audit/events", expect(403, auditor=200)),
        (
            "/v1/ledger/stats",
            expect(403, agency=200, other_agency=200, admin=200, finance=200, auditor=200),
        ),
    ]
    for path, statuses in reads:
        for name, status in statuses.items():
            r = await api.c.get(path, headers=h[name])
            assert r.status_code == status, (path, name, r.status_code, r.text)

    # lists and aggregates are narrowed to what the caller may see
    async def approvals(name: str) -> list[str]:
        return [
            p["approval_id"]
            for p in (await api.c.get("/v1/ledger/approvals", headers=h[name])).json()["items"]
        ]

    assert allocation_approval in await approvals("agency")
    assert await approvals("other_agency") == []
    assert await approvals("provider") == []
    assert len(await approvals("finance")) == 2  # the policy and the allocation
    other_stats = (await api.c.get("/v1/ledger/stats", headers=api.other_agency)).json()
    assert other_stats["years"] == []
    own_stats = (await api.c.get("/v1/ledger/stats", headers=api.agency)).json()
    assert own_stats["years"] != []

    # writes: each role tried once; what is allowed answers 201/202, nothing else changes
    before = await api.snapshot()
    refused_writes: list[tuple[str, str, Any, dict[str, int]]] = [
        (
            "POST",
            "/v1/ledger/grants",
            {"account_id": la, "amount": 1, "funder_id": "f", "reason_code": "top_up"},
            expect(403, agency=0, admin=0, other_agency=404),
        ),
        ("PUT", f"/v1/ledger/policies/{THIS_YEAR}", {}, expect(403, admin=0)),
        (
            "POST",
            "/v1/ledger/allocations",
            {"year": THIS_YEAR},
            expect(403, admin=0, agency=0, other_agency=0),
        ),
        (
            "POST",
            f"/v1/ledger/accounts/{la}/reversals",
            {"target": {"kind": "grant", "lot_id": lot}, "reason_code": "other"},
            expect(403, admin=0),
        ),
        ("POST", f"/v1/ledger/approvals/{allocation_approval}/approve", None, expect(403)),
        (
            "POST",
            f"/v1/ledger/approvals/{allocation_approval}/refuse",
            {"reason_code": "no"},
            expect(403),
        ),
        ("POST", "/v1/ledger/audit/verify", None, expect(403, auditor=0)),
    ]
    for method, path, body, statuses in refused_writes:
        for name, status in statuses.items():
            if name == "finance" and path.endswith(("/approve", "/refuse")):
                continue  # finance may: the four-eyes rules are tried below
            if status == 0:
                continue  # allowed: tried in the flows of the other tests
            r = await api.c.request(
                method,
                path,
                headers={**h[name], "Idempotency-Key": str(uuid.uuid4())},
                json=body,
            )
            assert r.status_code == status, (method, path, name, r.status_code, r.text)
    assert await api.snapshot() == before


async def test_out_of_scope_looks_like_missing(api: Api) -> None:
    account = await api.account()
    missing = str(uuid.uuid4())

    def same_shape(a: dict[str, Any], b: dict[str, Any], id_a: str, id_b: str) -> None:
        assert a.keys() == b.keys()
        assert a["code"] == b["code"] == "wallet_not_found"
        assert a["detail"].replace(id_a, "<id>") == b["detail"].replace(id_b, "<id>")
        assert {k: v for k, v in a.items() if k not in ("detail", "instance")} == {
            k: v for k, v in b.items() if k not in ("detail", "instance")
        }

    for path in ("balance", "entries"):
        theirs = await api.c.get(f"/v1/ledger/accounts/{account}/{path}", headers=api.other_agency)
        nothing = await api.c.get(f"/v1/ledger/accounts/{missing}/{path}", headers=api.other_agency)
        assert theirs.status_code == nothing.status_code == 404
        same_shape(theirs.json(), nothing.json(), account, missing)
    theirs = await api.grant(account, 100, headers=api.other_agency)
    nothing = await api.grant(missing, 100, headers=api.other_agency)
    assert theirs.status_code == nothing.status_code == 404
    same_shape(theirs.json(), nothing.json(), account, missing)
    # a national role sees the difference, as it should
    assert (await api.grant(account, 100, headers=api.admin)).status_code == 201


async def test_the_four_eyes_rules(api: Api) -> None:
    account = await api.account()
    lot = (await api.grant(account, 7_000)).json()["lot_id"]

    async def propose_reversal() -> dict[str, Any]:
        r = await api.c.post(
            f"/v1/ledger/accounts/{account}/reversals",
            headers={**api.admin, "Idempotency-Key": str(uuid.uuid4())},
            json={"target": {"kind": "grant", "lot_id": lot}, "reason_code": "wrong_amount"},
        )
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def code(r: Any, status: int) -> str:
        assert r.status_code == status, r.text
        return r.json().get("code", "")  # type: ignore[no-any-return]

    before = await api.snapshot()
    proposal = await propose_reversal()
    pid = proposal["approval_id"]
    # the proposer, even with a finance token of the same subject, cannot approve
    same_person = bearer(api.settings, "finance", sub="admin-ada")
    assert await code(await api.approve(pid, same_person), 403) == "same_person"
    # an approver of the wrong role cannot
    for headers in (api.admin, api.agency, api.auditor, api.qa, api.funder):
        assert (await api.approve(pid, headers)).status_code == 403
    # an approver cannot propose
    r = await api.c.post("/v1/ledger/allocations", json={"year": THIS_YEAR}, headers=api.finance)
    assert r.status_code == 403
    # expired: no one can approve it any more
    async with api.rt.uow() as s:
        await s.execute(
            text("UPDATE ledger.approvals SET expires_at = :t WHERE approval_id = :id"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "id": uuid.UUID(pid)},
        )
    assert await code(await api.approve(pid), 409) == "proposal_expired"
    status = (await api.c.get(f"/v1/ledger/approvals/{pid}", headers=api.finance)).json()
    assert status["status"] == "expired"
    after_refusals = await api.snapshot()
    assert after_refusals["events"] == before["events"]
    assert after_refusals["lots"] == before["lots"]

    # refused: cannot be approved afterwards
    refused = (await propose_reversal())["approval_id"]
    r = await api.c.post(
        f"/v1/ledger/approvals/{refused}/refuse",
        headers=api.finance,
        json={"reason_code": "not_justified"},
    )
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert await code(await api.approve(refused), 409) == "proposal_decided"
    assert (await api.balance(account))["available"] == 7_000

    # approved once, by a second person: done once
    approved = (await propose_reversal())["approval_id"]
    other_finance = bearer(api.settings, "finance", sub="fin-fiona")
    assert (await api.approve(approved, other_finance)).status_code == 200
    assert await code(await api.approve(approved), 409) == "proposal_decided"
    assert (await api.balance(account))["available"] == 0
    entries = (
        await api.c.get(f"/v1/ledger/accounts/{account}/entries", headers=api.auditor)
    ).json()["items"]
    reversed_ = [e for e in entries if e["type"].endswith("EntryReversed.v2")]
    assert len(reversed_) == 1
    # who asked and who approved, as the stream keeps them: keyed pseudonyms, never the
    # tokens' subjects
    asker = pseudonymous_actor("admin:admin-ada", api.settings.actor_pepper)
    assert reversed_[0]["data"]["actor"] == asker
    approver = pseudonymous_actor("finance:fin-fiona", api.settings.actor_pepper)
    assert reversed_[0]["metadata"]["actor"] == approver
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]
