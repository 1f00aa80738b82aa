"""A national id that has an account is named only to the agency that manages it.

Scenario replayed through the API: "A 409 on opening an account hands any agency the account
id of a person managed by another agency." Refused: another agency learns that an account
exists (it cannot open a second one) but neither its id nor which agency manages it, on the
single opening as on the CSV import; nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.support.accounts import (
    AGENCY_ID,
    OTHER_AGENCY_ID,
    Accounts,
    account_body,
    assert_problem,
)

pytestmark = pytest.mark.postgres

CSV_HEADER = (
    "national_id,birth_date,country,region,qualification_level,employment_status,"
    "need_flags,given_name,family_name,email,phone"
)


async def snapshot(accounts: Accounts) -> tuple[Any, ...]:
    return (
        await accounts.count("accounts"),
        await accounts.count("personal_keys"),
        await accounts.outbox(),
        await accounts.scalar(
            "SELECT string_agg(account_id::text || agency_id || status, ',' "
            "ORDER BY account_id) FROM accounts.accounts"
        ),
    )


def reveals_nothing(text: str, account_id: str) -> None:
    assert account_id not in text
    assert AGENCY_ID not in text


async def test_a_409_names_the_account_only_to_the_agency_that_manages_it(
    accounts: Accounts,
) -> None:
    body = account_body()
    account_id = await accounts.open(**body)
    before = await snapshot(accounts)

    # another agency: 409, no id, no agency, and the same words for anyone's national id
    r = await accounts.client.post("/v1/accounts", json=body, headers=accounts.other_agency)
    problem = assert_problem(r, 409)
    assert problem["code"] == "managed_by_another_agency"
    assert "account_id" not in problem
    reveals_nothing(r.text, account_id)
    # with an idempotency key the answer is the same and nothing is remembered
    keyed = {**accounts.other_agency, "Idempotency-Key": "dup-1"}
    for _ in range(2):
        again = await accounts.client.post("/v1/accounts", json=body, headers=keyed)
        assert assert_problem(again, 409) == problem | {"instance": again.json().get("instance")}
        reveals_nothing(again.text, account_id)
    second = account_body()
    await accounts.open(**second)
    mid = await snapshot(accounts)
    other = await accounts.client.post("/v1/accounts", json=second, headers=accounts.other_agency)
    assert assert_problem(other, 409)["detail"] == problem["detail"]
    assert await snapshot(accounts) == mid

    # the managing agency: 409 naming its account, as API.md states
    mine = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    named = assert_problem(mine, 409)
    assert named["account_id"] == account_id and account_id in named["detail"]
    assert named["code"] == "account_exists"
    assert (await snapshot(accounts))[0] == before[0] + 1  # only the second person's account


async def test_after_a_transfer_the_new_agency_is_the_one_told(accounts: Accounts) -> None:
    body = account_body()
    account_id = await accounts.open(**body)
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/transfer",
        json={"to_agency_id": OTHER_AGENCY_ID, "reason": "moved"},
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    old = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    assert "account_id" not in assert_problem(old, 409)
    assert account_id not in old.text and OTHER_AGENCY_ID not in old.text
    new = await accounts.client.post("/v1/accounts", json=body, headers=accounts.other_agency)
    assert assert_problem(new, 409)["account_id"] == account_id


async def test_the_csv_import_does_not_reveal_whom_another_agency_manages(
    accounts: Accounts,
) -> None:
    body = account_body()
    account_id = await accounts.open(**body)
    line = f"{body['national_id']},1985-05-12,FR,Bretagne,3,employed,,Lou,Bernard,lou@example.org,"
    content = f"{CSV_HEADER}\n{line}\n".encode()
    before = await snapshot(accounts)

    r = await accounts.client.post(
        "/v1/accounts/imports",
        content=content,
        headers={**accounts.other_agency, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    # not counted as "existing" (it is not this agency's), but rejected with the reason
    assert (report["opened"], report["existing"], report["rejected_count"]) == (0, 0, 1)
    assert report["rejected"][0]["line"] == 2
    assert "managed by another agency" in report["rejected"][0]["error"]
    reveals_nothing(r.text, account_id)
    assert await snapshot(accounts) == before

    # the managing agency's import: the line is its existing account
    r = await accounts.client.post(
        "/v1/accounts/imports",
        content=content,
        headers={**accounts.agency, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["opened"], r.json()["existing"], r.json()["rejected_count"]) == (0, 1, 0)
    assert await snapshot(accounts) == before
