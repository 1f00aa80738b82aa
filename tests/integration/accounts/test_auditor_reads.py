"""Auditors read accounts pseudonymously; personal data only for a stated purpose, and
that read is itself an event auditors of the auditors can see."""

from __future__ import annotations

import pytest

from tests.integration.support.accounts import Accounts

pytestmark = pytest.mark.postgres


async def test_an_auditor_sees_no_personal_data_without_a_purpose(accounts: Accounts) -> None:
    account_id = await accounts.open()
    r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.auditor)
    assert r.status_code == 200, r.text
    assert r.json()["personal"] is None and r.json()["personal_data_withheld"] is True
    listed = await accounts.client.get("/v1/accounts", headers=accounts.auditor)
    assert [a["personal"] for a in listed.json()["items"]] == [None]
    assert "Camille" not in r.text + listed.text
    assert await accounts.events_of(account_id, "PersonalDataRead") == []
    # the managing agency reads them as before, and nothing is logged for it
    mine = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.agency)
    assert mine.json()["personal"] is not None and mine.json()["personal_data_withheld"] is False
    assert await accounts.events_of(account_id, "PersonalDataRead") == []


async def test_a_stated_purpose_shows_the_data_and_is_logged(accounts: Accounts) -> None:
    account_id = await accounts.open()
    r = await accounts.client.get(
        f"/v1/accounts/{account_id}?purpose=fraud_investigation", headers=accounts.auditor
    )
    assert r.status_code == 200, r.text
    assert r.json()["personal"]["given_name"]
    [read] = await accounts.events_of(account_id, "PersonalDataRead")
    assert read["purpose"] == "fraud_investigation"
    bad = await accounts.client.get(
        f"/v1/accounts/{account_id}?purpose=curiosity", headers=accounts.auditor
    )
    assert bad.status_code == 422
    assert len(await accounts.events_of(account_id, "PersonalDataRead")) == 1
