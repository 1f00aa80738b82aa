"""The ledger's answers decided a fetched batch at a time (``saga_batch``) end where the same
answers applied one at a time by the single handlers end: the same enrolments, reservations,
claims, balances and events, with duplicates (the same envelope, a new event id) in the batch
and an answer the batch path hands to its single handler in the middle of it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from shared.bus import Message, topic_for
from shared.events import Envelope
from tests.integration.support.payments import World
from tests.support import eventually

pytestmark = pytest.mark.postgres

LEDGER = topic_for("ledger")


@contextlib.asynccontextmanager
async def held(world: World) -> AsyncIterator[list[Message]]:
    """What the ledger publishes is kept from the payments consumer (the rest goes on) and
    collected in the list yielded."""
    bus = world.rt.consumer.bus
    at = next(i for i, (group, _, _) in enumerate(bus.subscriptions) if group == "payments")
    group, topics, handler = bus.subscriptions[at]
    caught: list[Message] = []

    async def hold(messages: Any) -> None:
        caught.extend(m for m in messages if m.topic == LEDGER)
        rest = [m for m in messages if m.topic != LEDGER]
        if rest:
            await handler(rest)

    bus.subscriptions[at] = (group, topics, hold)
    try:
        yield caught
    finally:
        bus.subscriptions[at] = (group, topics, handler)


def renamed(message: Message, **data: Any) -> Message:
    """The same answer under a new event id (``data``: fields changed)."""
    env = Envelope.from_bytes(message.value)
    again = env.model_copy(update={"id": uuid.uuid4(), "data": {**env.data, **data}})
    return Message(message.topic, message.key, again.to_bytes())


async def answered(caught: list[Message], n: int) -> None:
    """Wait until ``n`` answers were caught."""

    async def count() -> int:
        return len(answers(caught))

    await eventually(count, lambda found: found == n)


def answers(caught: list[Message]) -> list[Message]:
    """The saga's answers among what the ledger published."""
    wanted = ("CreditsReserved", "ReservationRejected", "ReservationCaptured", "Released")
    return [m for m in caught if any(w in Envelope.from_bytes(m.value).type for w in wanted)]


async def deliver(world: World, messages: list[Message], *, batched: bool) -> None:
    consumer = world.rt.consumer
    if batched:  # one fetched batch, twice over, and every answer again under a new id
        await consumer.handle_batch(messages + messages)
        await consumer.handle_batch([renamed(m) for m in messages])
    else:  # the single handlers, as when a batch handler fails as a whole
        for m in messages + messages + [renamed(m) for m in messages]:
            await consumer._apply_batch([m], batched=False)


async def picture(world: World, accounts: list[str], enrolments: list[str]) -> list[Any]:
    """Everything the answers decide, per enrolment in order, without ids."""
    ids = [uuid.UUID(e) for e in enrolments]
    async with world.rt.sessions() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT e.enrolment_id, e.status, e.covered, e.co_payment, e.captured, "
                    "e.released, e.reason, r.status AS r_status, r.amount AS r_amount, "
                    "r.captured AS r_captured, r.released AS r_released, "
                    "array(SELECT c.status || ':' || c.captured FROM payments.claims c "
                    "WHERE c.enrolment_id = e.enrolment_id ORDER BY c.claimed_at) AS claims "
                    "FROM payments.enrolments e LEFT JOIN payments.reservations r "
                    "ON r.reservation_id = e.reservation_id WHERE e.enrolment_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).mappings()
        found = {
            r["enrolment_id"]: {k: v for k, v in r.items() if k != "enrolment_id"} for r in rows
        }
        events: dict[str, list[str]] = {e: [] for e in enrolments}
        for row in await s.execute(text("SELECT type, body FROM payments.outbox ORDER BY id")):
            data = orjson.loads(row.body)["data"]
            if data.get("enrolment_id") in events:
                events[data["enrolment_id"]].append(row.type)
    balances = [await world.balance(a) for a in accounts]
    return [
        (
            found[i],
            events[e],
            {k: b.get(k) for k in ("available", "reserved", "spent_total")},
        )
        for i, e, b in zip(ids, enrolments, balances, strict=True)
    ]


async def test_a_batch_of_answers_ends_as_one_at_a_time(world: World) -> None:
    course = await world.course("p1", price=100_000, starts_in=-1)
    sets: dict[bool, tuple[list[str], list[str]]] = {}
    for batched in (True, False):
        accounts = [await world.account(credit=300_000) for _ in range(5)]
        accounts.append(await world.account(credit=0))  # refused: nothing to reserve
        proposed = [(await world.propose("p1", a, course)).json() for a in accounts]
        sets[batched] = (accounts, [p["enrolment_id"] for p in proposed])
    first: dict[bool, list[Message]] = {}
    for batched, (accounts, enrolments) in sets.items():
        async with held(world) as caught:
            for a, e in zip(accounts, enrolments, strict=True):
                assert (await world.confirm(a, e)).status_code == 202
            await answered(caught, 6)
        first[batched] = answers(caught)
        await deliver(world, first[batched], batched=batched)
        for e in enrolments:
            await world.settled(e, "confirmed", "rejected")

    world.session_over(await world.enrolment(sets[True][1][0]))
    for batched, (accounts, enrolments) in sets.items():
        async with held(world) as caught:
            for e, rate in zip(enrolments[:4], (100, 100, 50, 80), strict=True):
                assert (await world.claim("p1", e, rate=rate)).status_code == 202
            cancel = f"/v1/enrolments/{enrolments[4]}/cancel"
            r = await world.c.post(cancel, headers=world.learner(accounts[4]), json={})
            assert r.status_code == 202, r.text
            await answered(caught, 5)
        second = answers(caught)
        # a capture named by no part id goes to its single handler in mid-batch
        second.insert(2, renamed(second[0], capture_id=None))
        await deliver(world, second, batched=batched)

    together = await picture(world, *sets[True])
    alone = await picture(world, *sets[False])
    assert together == alone
    statuses = [p[0]["status"] for p in together]
    assert statuses == ["completed", "completed", "completed", "completed", "cancelled", "rejected"]
    spent = [p[2]["spent_total"] for p in together]
    assert spent == [100_000, 100_000, 50_000, 100_000, 10_000, 0], spent
    assert [p[1].count("ila.payments.EnrolmentConfirmed.v1") for p in together] == [1] * 5 + [0]
