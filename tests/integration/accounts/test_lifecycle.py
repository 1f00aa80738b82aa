"""Suspend, reinstate, close (final), transfer and profile changes: each state change is
one event in the outbox, and no event ever carries personal data."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from shared.pseudonym import pseudonymous_actor
from shared.settings import DEV_ACTOR_PEPPER
from tests.integration.support.accounts import (
    AGENCY_ID,
    OTHER_AGENCY_ID,
    Accounts,
    account_body,
    assert_problem,
    event_type,
)

pytestmark = pytest.mark.postgres

PERSONAL = {
    "given_name": "Anne-Sophie",
    "family_name": "Lefèvre-Dubois",
    "email": "anne-sophie.lefevre@example.org",
    "phone": "+33 6 12 34 56 78",
    "address": "12 rue des Lilas, 75020 Paris",
}
NATIONAL_ID = "2 91 07 75 120 042"


async def post(accounts: Accounts, account_id: str, action: str, **body: Any) -> Any:
    return await accounts.client.post(
        f"/v1/accounts/{account_id}/{action}", json=body, headers=accounts.agency
    )


async def read(accounts: Accounts, account_id: str, headers: dict[str, str] | None = None) -> Any:
    r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=headers or accounts.agency)
    assert r.status_code == 200, r.text
    return r.json()


async def assert_no_personal_data_in_outbox(accounts: Accounts) -> None:
    bodies = await accounts.outbox_bodies()
    assert bodies
    nid_compact = NATIONAL_ID.replace(" ", "")
    needles = [
        *PERSONAL.values(),
        NATIONAL_ID,
        nid_compact,
        "Anne",
        "Lefèvre",
        "Lef\\u00e8vre",
        "example.org",
        "1991-07",
    ]
    for body in bodies:
        for needle in needles:
            assert needle not in body, (needle, body)


async def test_suspend_reinstate_close_and_close_is_final(accounts: Accounts) -> None:
    account_id = await accounts.open(
        national_id=NATIONAL_ID, personal=PERSONAL, birth_date="1991-07-21"
    )

    r = await post(
        accounts,
        account_id,
        "suspend",
        reason_code="documents_missing",
        note="Anne-Sophie has not sent her diploma",
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    assert r.json()["status_reason_code"] == "documents_missing"
    assert r.json()["status_note"] == "Anne-Sophie has not sent her diploma"
    # suspending twice is not a state change
    assert_problem(await post(accounts, account_id, "suspend", reason_code="other"), 409)

    r = await post(accounts, account_id, "reinstate", reason_code="documents_received")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["status_note"] is None  # a note belongs to the move it came with
    assert_problem(await post(accounts, account_id, "reinstate", reason_code="other"), 409)

    r = await post(accounts, account_id, "close", reason_code="moved_abroad")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"
    assert (await read(accounts, account_id))["status"] == "closed"

    outbox_before = await accounts.count("outbox")
    for action, body in [
        ("reinstate", {"reason_code": "other"}),
        ("suspend", {"reason_code": "other"}),
        ("close", {"reason_code": "other"}),
        ("transfer", {"to_agency_id": OTHER_AGENCY_ID}),
    ]:
        problem = assert_problem(await post(accounts, account_id, action, **body), 409)
        assert "closed" in problem["detail"], problem
    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile",
        json={"qualification_level": 6},
        headers=accounts.agency,
    )
    assert_problem(r, 409)
    assert await accounts.count("outbox") == outbox_before
    account = await read(accounts, account_id)
    assert account["status"] == "closed"
    assert account["need_profile"]["qualification_level"] == 3

    assert [t for t, _, _ in await accounts.outbox()] == [
        event_type("AccountOpened"),
        event_type("AccountSuspended"),
        event_type("AccountReinstated"),
        event_type("AccountClosed"),
    ]
    # the events carry the reason codes, never the note
    assert await accounts.events_of(account_id, "AccountSuspended") == [
        {"account_id": account_id, "reason_code": "documents_missing"}
    ]
    assert await accounts.events_of(account_id, "AccountReinstated") == [
        {"account_id": account_id, "reason_code": "documents_received"}
    ]
    assert await accounts.events_of(account_id, "AccountClosed") == [
        {"account_id": account_id, "reason_code": "moved_abroad"}
    ]
    assert not any("diploma" in body for body in await accounts.outbox_bodies())
    await assert_no_personal_data_in_outbox(accounts)


async def test_a_suspended_account_may_be_closed(accounts: Accounts) -> None:
    account_id = await accounts.open()
    r = await post(accounts, account_id, "suspend", reason_code="fraud_suspected")
    assert r.status_code == 200, r.text
    r = await post(accounts, account_id, "close", reason_code="fraud_confirmed")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"
    assert_problem(await post(accounts, account_id, "reinstate", reason_code="other"), 409)


async def test_events_carry_the_envelope_and_the_account_as_key(accounts: Accounts) -> None:
    account_id = await accounts.open()
    await post(accounts, account_id, "suspend", reason_code="other")
    for _, key, doc in await accounts.outbox():
        assert key == account_id
        assert doc["subject"] == account_id
        assert doc["source"] == "/ila/accounts"
        # who acted, as a stable keyed pseudonym, never the token's subject
        assert doc["actor"] == pseudonymous_actor("agency:pes-fr-desk", DEV_ACTOR_PEPPER)
        assert "pes-fr-desk" not in doc["actor"]
        assert doc["specversion"] == "1.0"


async def test_transfer_hands_the_account_to_the_new_agency(accounts: Accounts) -> None:
    account_id = await accounts.open(national_id=NATIONAL_ID, personal=PERSONAL)
    r = await post(
        accounts, account_id, "transfer", to_agency_id=OTHER_AGENCY_ID, reason="moved to Brussels"
    )
    assert r.status_code == 200, r.text
    assert r.json()["agency_id"] == OTHER_AGENCY_ID

    # the old agency now gets the answer a missing account gets
    old = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.agency)
    assert assert_problem(old, 404)["detail"] == f"no account {account_id}"
    new = await read(accounts, account_id, accounts.other_agency)
    assert new["agency_id"] == OTHER_AGENCY_ID
    assert new["personal"]["given_name"] == PERSONAL["given_name"]
    assert new["status"] == "active"

    assert await accounts.events_of(account_id, "AccountTransferred") == [
        {"account_id": account_id, "from_agency_id": AGENCY_ID, "to_agency_id": OTHER_AGENCY_ID}
    ]
    # the new agency may transfer it back; the old one can no longer list it
    listed = await accounts.client.get("/v1/accounts", headers=accounts.agency)
    assert account_id not in {a["account_id"] for a in listed.json()["items"]}
    back = await accounts.client.post(
        f"/v1/accounts/{account_id}/transfer",
        json={"to_agency_id": AGENCY_ID},
        headers=accounts.other_agency,
    )
    assert back.status_code == 200, back.text
    assert (await read(accounts, account_id))["agency_id"] == AGENCY_ID
    await assert_no_personal_data_in_outbox(accounts)


async def test_profile_update_emits_the_new_need_profile(accounts: Accounts) -> None:
    account_id = await accounts.open(
        national_id=NATIONAL_ID, personal=PERSONAL, birth_date="1991-07-21"
    )
    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile",
        json={
            "qualification_level": 5,
            "need_flags": ["single_parent", "disability", "disability"],
        },
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    expected = {
        "qualification_level": 5,
        "employment_status": "unemployed",
        "need_tier": "high",
        "employer_id": None,
        "need_flags": ["disability", "single_parent"],
    }
    assert r.json()["need_profile"] == expected
    assert (await read(accounts, account_id))["need_profile"] == expected
    # the event carries the tier the flags give, never the flags
    assert await accounts.events_of(account_id, "AccountProfileUpdated") == [
        {
            "account_id": account_id,
            "profile": {
                "qualification_level": 5,
                "employment_status": "unemployed",
                "need_tier": "high",
                "employer_id": None,
            },
        }
    ]

    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile",
        json={"employment_status": "employed", "need_flags": []},
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    updates = await accounts.events_of(account_id, "AccountProfileUpdated")
    assert updates[-1]["profile"] == {
        "qualification_level": 5,
        "employment_status": "employed",
        "need_tier": "standard",
        "employer_id": None,
    }
    assert (await read(accounts, account_id))["need_profile"]["need_flags"] == []

    # an empty change changes nothing and says nothing
    before = await accounts.count("outbox")
    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile", json={}, headers=accounts.agency
    )
    assert r.status_code == 200, r.text
    assert await accounts.count("outbox") == before
    await assert_no_personal_data_in_outbox(accounts)


async def test_a_suspended_account_profile_may_change(accounts: Accounts) -> None:
    account_id = await accounts.open()
    await post(accounts, account_id, "suspend", reason_code="other")
    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile",
        json={"employment_status": "inactive"},
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"


async def test_opening_emits_the_need_category(accounts: Accounts) -> None:
    body = account_body(
        national_id=NATIONAL_ID,
        personal=PERSONAL,
        birth_date="1991-07-21",
        need_flags=["low_literacy", "disability"],
        qualification_level=2,
    )
    r = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    assert r.status_code == 201, r.text
    account_id = r.json()["account_id"]
    (opened,) = await accounts.events_of(account_id, "AccountOpened")
    # what the rules need: no need flags, birth year, country or region
    assert opened == {
        "account_id": account_id,
        "agency_id": AGENCY_ID,
        "profile": {
            "qualification_level": 2,
            "employment_status": "unemployed",
            "need_tier": "high",
            "employer_id": None,
        },
        "opened_at": opened["opened_at"],
    }
    await assert_no_personal_data_in_outbox(accounts)
    # nor is the national id stored raw anywhere in the account's row
    async with accounts.db.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM accounts.accounts WHERE account_id = :a"), {"a": account_id}
                )
            )
            .mappings()
            .one()
        )
    # the birth year alone is kept for the statistics' age bands (erased with the region);
    # the birth date and everything else personal are only in the sealed personal data
    assert row["birth_year"] == 1991
    flat = repr(tuple(v for k, v in row.items() if k != "birth_year"))
    for needle in (
        NATIONAL_ID,
        NATIONAL_ID.replace(" ", ""),
        "Anne-Sophie",
        "example.org",
        "disability",
        "low_literacy",
        "1991",
    ):
        assert needle not in flat


async def test_the_list_pages_through_the_agency_accounts(accounts: Accounts) -> None:
    mine = {await accounts.open() for _ in range(7)}
    r = await accounts.client.post(
        "/v1/accounts", json=account_body(), headers=accounts.other_agency
    )
    theirs = r.json()["account_id"]
    seen: list[str] = []
    url = "/v1/accounts?limit=3"
    while url:
        page = (await accounts.client.get(url, headers=accounts.agency)).json()
        assert len(page["items"]) <= 3
        seen += [a["account_id"] for a in page["items"]]
        url = f"/v1/accounts?limit=3&after={page['next']}" if page["next"] else ""
    assert seen == sorted(mine)
    everyone = await accounts.client.get("/v1/accounts?limit=500", headers=accounts.auditor)
    assert {a["account_id"] for a in everyone.json()["items"]} == mine | {theirs}
