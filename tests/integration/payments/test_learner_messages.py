"""What payments tells the accounts service so that it can write to the learner: a proposal
waiting for consent (``EnrolmentProposed``, with its deadline) and its answer, a contest
(``ClaimContested`` naming the learner). The messages themselves are tested in
tests/integration/test_messages.py; here the real flow queues them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.support.payments import World, captured_claim
from tests.support import eventually

pytestmark = pytest.mark.postgres


async def outgoing(world: World, account: str) -> list[Any]:
    async with world.app.state.runtimes["accounts"].sessions() as session:
        rows = await session.execute(
            text(
                "SELECT kind, fact_key, recipient FROM accounts.outgoing_mail "
                "WHERE person = :p ORDER BY created_at"
            ),
            {"p": account},
        )
        return list(rows)


async def events(world: World, kind: str) -> list[dict[str, Any]]:
    async with world.rt.sessions() as session:
        rows = await session.execute(
            text("SELECT body FROM payments.outbox WHERE type = :t ORDER BY id"),
            {"t": f"ila.payments.{kind}.v1"},
        )
        return [json.loads(bytes(r.body))["data"] for r in rows]


async def answered(world: World, enrolment_id: str) -> bool | None:
    async with world.app.state.runtimes["accounts"].sessions() as session:
        found: bool | None = await session.scalar(
            text("SELECT answered FROM accounts.proposals WHERE enrolment_id = :e"),
            {"e": uuid.UUID(enrolment_id)},
        )
        return found


async def test_a_proposal_is_told_to_the_learner_until_answered(world: World) -> None:
    account = await world.account(credit=150_000)
    course = await world.course("p1", price=100_000)
    r = await world.propose("p1", account, course)
    assert r.status_code == 202, r.text
    e = r.json()
    [told] = await events(world, "EnrolmentProposed")
    assert told["enrolment_id"] == e["enrolment_id"] and told["account_id"] == account
    assert told["co_payment"] == e["co_payment"] and told["price"] == e["price"]
    assert told["expires_at"].replace("Z", "+00:00")[:19] == e["expires_at"][:19]
    rows = await eventually(lambda: outgoing(world, account), lambda rows: len(rows) == 1)
    assert rows[0].kind == "proposal_waiting" and e["enrolment_id"] in rows[0].fact_key
    assert await answered(world, e["enrolment_id"]) is False
    r = await world.confirm(account, e["enrolment_id"])
    assert r.status_code == 202, r.text
    await eventually(lambda: answered(world, e["enrolment_id"]), lambda a: a is True)


async def test_a_contest_is_acknowledged_to_the_learner(world: World) -> None:
    account, claim = await captured_claim(world)
    r = await world.c.post(
        f"/v1/claims/{claim['claim_id']}/contest",
        headers=world.learner(account),
        json={"reason_code": "did_not_attend"},
    )
    assert r.status_code == 200, r.text
    [contested] = await events(world, "ClaimContested")
    assert contested["account_id"] == account and contested["reason_code"] == "did_not_attend"
    rows = await eventually(
        lambda: outgoing(world, account), lambda rows: "claim_contested" in {r.kind for r in rows}
    )
    assert [r.kind for r in rows].count("claim_contested") == 1
