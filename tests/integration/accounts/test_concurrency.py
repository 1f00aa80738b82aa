"""One person, one account, however many requests race for it; Idempotency-Key replays."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.integration.support.accounts import (
    Accounts,
    account_body,
    assert_problem,
    event_type,
)

pytestmark = pytest.mark.postgres

RACERS = 20


async def test_twenty_concurrent_opens_of_one_person_make_one_account(accounts: Accounts) -> None:
    body = account_body()
    # the same person, as different desks of the agency would type the national id
    spellings = [body["national_id"], " ".join(body["national_id"]), body["national_id"].lower()]
    replies = await asyncio.gather(
        *[
            accounts.client.post(
                "/v1/accounts",
                json={**body, "national_id": spellings[i % len(spellings)]},
                headers=accounts.agency,
            )
            for i in range(RACERS)
        ]
    )
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] + [409] * (RACERS - 1), [r.text for r in replies]
    (created,) = [r for r in replies if r.status_code == 201]
    account_id = created.json()["account_id"]
    for r in replies:
        if r.status_code == 409:
            problem = assert_problem(r, 409)
            assert problem["account_id"] == account_id, problem
            assert account_id in problem["detail"]
    assert await accounts.count("accounts") == 1
    assert await accounts.count("personal_keys") == 1
    opened = await accounts.count("outbox", "type = :t", t=event_type("AccountOpened"))
    assert opened == 1
    assert await accounts.count("outbox") == 1


async def test_concurrent_opens_of_different_people_all_succeed(accounts: Accounts) -> None:
    replies = await asyncio.gather(
        *[
            accounts.client.post("/v1/accounts", json=account_body(), headers=accounts.agency)
            for _ in range(RACERS)
        ]
    )
    assert [r.status_code for r in replies] == [201] * RACERS, [r.text for r in replies]
    assert len({r.json()["account_id"] for r in replies}) == RACERS
    assert await accounts.count("accounts") == RACERS
    assert await accounts.count("outbox", "type = :t", t=event_type("AccountOpened")) == RACERS
    assert await accounts.count("outbox", "bulk") == 0  # one by one: none gives way


async def test_same_key_same_body_replays_the_first_answer(accounts: Accounts) -> None:
    body = account_body()
    headers = {**accounts.agency, "Idempotency-Key": str(uuid.uuid4())}
    first = await accounts.client.post("/v1/accounts", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = await accounts.client.post("/v1/accounts", json=body, headers=headers)
        assert again.status_code == first.status_code
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
    assert await accounts.count("accounts") == 1
    assert await accounts.count("outbox") == 1


async def test_same_key_different_body_is_refused(accounts: Accounts) -> None:
    headers = {**accounts.agency, "Idempotency-Key": "open-camille"}
    first = await accounts.client.post("/v1/accounts", json=account_body(), headers=headers)
    assert first.status_code == 201, first.text
    other = await accounts.client.post("/v1/accounts", json=account_body(), headers=headers)
    problem = assert_problem(other, 422)
    assert problem["idempotency_key"] == "open-camille"
    assert await accounts.count("accounts") == 1
    assert await accounts.count("outbox") == 1


async def test_keys_belong_to_their_caller(accounts: Accounts) -> None:
    """Another caller reusing a key string does not get the first caller's answer."""
    key = {"Idempotency-Key": "shared-key"}
    first = await accounts.client.post(
        "/v1/accounts", json=account_body(), headers={**accounts.agency, **key}
    )
    assert first.status_code == 201, first.text
    second = await accounts.client.post(
        "/v1/accounts", json=account_body(), headers={**accounts.other_agency, **key}
    )
    assert second.status_code == 201, second.text
    assert second.json()["account_id"] != first.json()["account_id"]
    assert "idempotent-replayed" not in second.headers


async def test_concurrent_requests_with_one_key_have_one_effect(accounts: Accounts) -> None:
    body = account_body()
    headers = {**accounts.agency, "Idempotency-Key": str(uuid.uuid4())}
    replies = await asyncio.gather(
        *[accounts.client.post("/v1/accounts", json=body, headers=headers) for _ in range(RACERS)]
    )
    assert [r.status_code for r in replies] == [201] * RACERS, [r.text for r in replies]
    assert len({r.json()["account_id"] for r in replies}) == 1
    replayed = [r for r in replies if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == RACERS - 1
    assert await accounts.count("accounts") == 1
    assert await accounts.count("idempotency") == 1
    assert await accounts.count("outbox") == 1


async def test_a_conflict_is_not_stored_under_the_key(accounts: Accounts) -> None:
    """A 409 changed nothing, so it is not remembered: the answer stays the truthful 409."""
    body = account_body()
    created = await accounts.client.post("/v1/accounts", json=body, headers=accounts.agency)
    assert created.status_code == 201
    headers = {**accounts.agency, "Idempotency-Key": "late-duplicate"}
    for _ in range(2):
        r = await accounts.client.post("/v1/accounts", json=body, headers=headers)
        assert assert_problem(r, 409)["account_id"] == created.json()["account_id"]
    assert await accounts.count("accounts") == 1
    assert await accounts.count("outbox") == 1
