"""Erasure destroys the account's data key: personal data become unreadable everywhere,
including in any copy of the ciphertext, while the account and its events stay whole."""

from __future__ import annotations

import uuid

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from services.accounts.handlers.personal import decrypt_personal
from tests.integration.support.accounts import (
    Accounts,
    account_body,
    assert_problem,
    event_type,
)

pytestmark = pytest.mark.postgres

PERSONAL = {"given_name": "Jonas", "family_name": "Peeters", "email": "jonas@example.be"}


async def stored(accounts: Accounts, account_id: str) -> tuple[bytes | None, bytes | None]:
    async with accounts.db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT personal_nonce, personal_ciphertext FROM accounts.accounts "
                    "WHERE account_id = :a"
                ),
                {"a": account_id},
            )
        ).one()
    return row.personal_nonce, row.personal_ciphertext


async def test_erasure_makes_personal_data_unreadable(accounts: Accounts) -> None:
    account_id = await accounts.open(personal=PERSONAL)
    await accounts.open(personal={"given_name": "Lena", "family_name": "Vos"})
    aid = uuid.UUID(account_id)
    # what a backup taken today would hold
    nonce, ciphertext = await stored(accounts, account_id)
    assert nonce is not None and ciphertext is not None
    assert b"Jonas" not in ciphertext and b"jonas@example.be" not in ciphertext
    wrapped = await accounts.wrapped_key(aid)
    key = accounts.keyring().unwrap(aid, wrapped)
    assert key not in wrapped.wrapped  # the database holds the data key wrapped only
    assert decrypt_personal(key, aid, nonce, ciphertext)["given_name"] == "Jonas"

    r = await accounts.client.delete(
        f"/v1/accounts/{account_id}/personal-data", headers=accounts.agency
    )
    assert r.status_code == 204, r.text
    assert r.content == b""

    for headers in (accounts.agency, accounts.auditor, accounts.learner(account_id)):
        r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=headers)
        assert r.status_code == 200, r.text
        account = r.json()
        assert account["personal"] is None
        assert account["personal_data_erased"] is True
        assert "Jonas" not in r.text and "Peeters" not in r.text
        # the account itself stays: status, need profile (the tier, not the flags), agency
        assert account["status"] == "active"
        assert account["need_profile"]["qualification_level"] == 3
        assert account["need_profile"]["need_tier"] == "high"
        assert account["need_profile"]["need_flags"] is None
        # and nothing that could single the person out again
        assert account["birth_year"] is None
        assert account["country"] is None and account["region"] is None

    # the key is gone, so the backed-up ciphertext is noise; the live copy is gone too
    assert await accounts.count("personal_keys", "account_id = :a", a=aid) == 0
    assert await stored(accounts, account_id) == (None, None)
    async with accounts.db.connect() as conn:
        remaining = (
            await conn.execute(text("SELECT account_id FROM accounts.personal_keys"))
        ).all()
    assert len(remaining) == 1  # the other account's
    for (other,) in remaining:
        other_key = accounts.keyring().unwrap(other, await accounts.wrapped_key(other))
        with pytest.raises(InvalidTag):
            decrypt_personal(other_key, aid, nonce, ciphertext)

    erased = await accounts.events_of(account_id, "PersonalDataErased")
    assert erased == [{"account_id": account_id}]
    for body in await accounts.outbox_bodies():
        assert "Jonas" not in body and "jonas@example.be" not in body


async def test_a_second_erasure_is_harmless(accounts: Accounts) -> None:
    account_id = await accounts.open(personal=PERSONAL)
    for _ in range(3):
        r = await accounts.client.delete(
            f"/v1/accounts/{account_id}/personal-data", headers=accounts.agency
        )
        assert r.status_code == 204, r.text
    assert len(await accounts.events_of(account_id, "PersonalDataErased")) == 1
    assert await accounts.count("outbox", "type = :t", t=event_type("PersonalDataErased")) == 1


async def test_erasure_of_one_account_leaves_the_others_readable(accounts: Accounts) -> None:
    erased = await accounts.open(personal=PERSONAL)
    kept = await accounts.open(personal={"given_name": "Lena", "family_name": "Vos"})
    r = await accounts.client.delete(
        f"/v1/accounts/{erased}/personal-data", headers=accounts.agency
    )
    assert r.status_code == 204
    r = await accounts.client.get(f"/v1/accounts/{kept}", headers=accounts.agency)
    assert r.json()["personal"]["given_name"] == "Lena"
    assert r.json()["personal_data_erased"] is False


async def test_an_erased_account_keeps_its_lifecycle_and_national_id_uniqueness(
    accounts: Accounts,
) -> None:
    """The keyed national-id hash stays: the same person cannot open a second account."""
    body = account_body(personal=PERSONAL)
    r = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    account_id = r.json()["account_id"]
    r = await accounts.client.delete(
        f"/v1/accounts/{account_id}/personal-data", headers=accounts.agency
    )
    assert r.status_code == 204
    again = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    assert assert_problem(again, 409)["account_id"] == account_id
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/close",
        json={"reason_code": "requested_by_holder"},
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    r = await accounts.client.delete(
        f"/v1/accounts/{account_id}/personal-data", headers=accounts.agency
    )
    assert r.status_code == 204


async def test_erasure_by_another_agency_is_refused(accounts: Accounts) -> None:
    account_id = await accounts.open(personal=PERSONAL)
    r = await accounts.client.delete(
        f"/v1/accounts/{account_id}/personal-data", headers=accounts.other_agency
    )
    assert assert_problem(r, 404)["detail"] == f"no account {account_id}"
    r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.agency)
    assert r.json()["personal"]["given_name"] == "Jonas"
    assert await accounts.events_of(account_id, "PersonalDataErased") == []
