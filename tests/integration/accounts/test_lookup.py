"""The account of a person signing in, by national id: only the portal's role may ask, it
learns the account id and nothing else, and its token opens no other door."""

from __future__ import annotations

import uuid

from tests.integration.support.accounts import (
    Accounts,
    account_body,
    assert_problem,
    error_fields,
    new_national_id,
)
from tests.support import bearer


async def test_the_portal_finds_the_account_of_a_national_id(accounts: Accounts) -> None:
    national_id = new_national_id()
    account_id = await accounts.open(national_id=national_id)
    await accounts.open()  # someone else
    portal = bearer(accounts.settings, "portal", sub="portal")
    for asked in (national_id, national_id.lower(), f" {national_id[:2]} {national_id[2:]} "):
        r = await accounts.client.post(
            "/v1/accounts/lookup", json={"national_id": asked}, headers=portal
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"account_id": account_id}  # the account id and nothing else

    r = await accounts.client.post(
        "/v1/accounts/lookup", json={"national_id": new_national_id()}, headers=portal
    )
    problem = assert_problem(r, 404)
    assert national_id not in r.text and "no account" in problem["detail"]


async def test_no_other_role_may_look_up_and_the_portal_may_do_nothing_else(
    accounts: Accounts,
) -> None:
    national_id = new_national_id()
    account_id = await accounts.open(national_id=national_id)
    s = accounts.settings
    for headers in (
        accounts.agency,
        accounts.auditor,
        accounts.learner(account_id),
        bearer(s, "admin"),
        bearer(s, "finance"),
    ):
        r = await accounts.client.post(
            "/v1/accounts/lookup", json={"national_id": national_id}, headers=headers
        )
        assert_problem(r, 403)
    r = await accounts.client.post("/v1/accounts/lookup", json={"national_id": national_id})
    assert_problem(r, 401)

    portal = bearer(s, "portal", sub="portal")
    for method, path, body in (
        ("GET", "/v1/accounts", None),
        ("GET", f"/v1/accounts/{account_id}", None),
        ("POST", "/v1/accounts", account_body()),
        ("POST", f"/v1/accounts/{account_id}/suspend", {"reason_code": "fraud_suspected"}),
        ("DELETE", f"/v1/accounts/{account_id}/personal-data", None),
    ):
        r = await accounts.client.request(
            method,
            path,
            json=body,
            headers={**portal, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert_problem(r, 403)


async def test_a_malformed_national_id_is_refused_without_echoing_it(accounts: Accounts) -> None:
    portal = bearer(accounts.settings, "portal", sub="portal")
    for body in ({"national_id": "<script>x</script>"}, {"national_id": 12345678}, {}):
        r = await accounts.client.post("/v1/accounts/lookup", json=body, headers=portal)
        problem = assert_problem(r)
        assert problem["status"] in (400, 422)
        assert "script" not in r.text
        assert error_fields(problem) <= {"national_id", "body"}
