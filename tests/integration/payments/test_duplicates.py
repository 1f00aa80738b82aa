"""Every message of the saga delivered twice — the same envelope, and the same payload under
a new event id — changes nothing: no double reservation, capture, confirmation or payout."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.bus import Message
from shared.events import Envelope
from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres


async def sent(world: World, service: str, kind: str) -> list[Message]:
    async with world.app.state.runtimes[service].sessions() as session:
        rows = await session.execute(
            text(f'SELECT topic, key, body FROM "{service}".outbox WHERE type = :t ORDER BY id'),
            {"t": f"ila.{service}.{kind}.v1"},
        )
        return [Message(r.topic, r.key, bytes(r.body)) for r in rows]


def renamed(message: Message) -> Message:
    """The same payload under a new event id (a producer that published twice)."""
    env = Envelope.from_bytes(message.value)
    again = env.model_copy(update={"id": __import__("uuid").uuid4()})
    return Message(message.topic, message.key, again.to_bytes())


async def twice(world: World, consumer_of: str, messages: list[Message]) -> None:
    consumer = world.app.state.runtimes[consumer_of].consumer
    assert messages
    await consumer.handle_batch(messages + messages)
    await consumer.handle_batch([renamed(m) for m in messages])


async def snapshot(world: World, account: str, enrolment_id: str) -> tuple[object, ...]:
    b = await world.balance(account)
    e = await world.enrolment(enrolment_id)
    claims = (
        await world.c.get("/v1/claims", params={"enrolment_id": enrolment_id}, headers=world.agency)
    ).json()["items"]
    return (
        b["available"],
        b["reserved"],
        b["spent_total"],
        b["version"],
        e["status"],
        e["covered"],
        e["captured"],
        e["released"],
        sorted((c["status"], c["captured"]) for c in claims),
    )


async def test_every_step_delivered_twice(world: World) -> None:
    account = await world.account(credit=300_000)
    course = await world.course("p1", price=100_000, starts_in=-1)
    e = await world.enrolled("p1", account, course)
    enrolment_id = e["enrolment_id"]
    before = await snapshot(world, account, enrolment_id)
    # reservation request to the ledger, and its answer back to payments
    await twice(world, "ledger", await sent(world, "payments", "EnrolmentRequested"))
    await twice(world, "payments", await sent(world, "ledger", "CreditsReserved"))
    assert await snapshot(world, account, enrolment_id) == before
    assert len(await sent(world, "payments", "EnrolmentConfirmed")) == 1

    world.session_over(e)
    claim = await world.claim("p1", enrolment_id, rate=50)
    await world.captured(claim.json()["claim_id"])
    after_capture = await snapshot(world, account, enrolment_id)
    assert after_capture[2] == 50_000
    await twice(world, "ledger", await sent(world, "payments", "CaptureRequested"))
    await twice(world, "payments", await sent(world, "ledger", "ReservationCaptured"))
    assert await snapshot(world, account, enrolment_id) == after_capture
    assert len(await sent(world, "ledger", "ReservationCaptured")) == 1

    await world.attest(claim.json()["claim_id"])
    run = await world.released_run()
    assert [p["amount"] for p in run["payouts"]] == [50_000]
    await twice(world, "payments", await sent(world, "ledger", "ReservationCaptured"))
    assert (await world.run_payouts())["payouts"] == []
    assert (await world.claim_status(claim.json()["claim_id"]))["status"] == "in_payout"


async def test_rejections_and_releases_delivered_twice(world: World) -> None:
    poor = await world.account(credit=0)
    course = await world.course("p1", price=100_000, starts_in=30)
    rejected = await world.enrolled("p1", poor, course)
    assert rejected["status"] == "rejected"
    await twice(world, "payments", await sent(world, "ledger", "ReservationRejected"))
    assert (await world.enrolment(rejected["enrolment_id"]))["status"] == "rejected"
    assert len(await sent(world, "payments", "EnrolmentRejected")) == 1

    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, course)
    r = await world.c.post(
        f"/v1/enrolments/{e['enrolment_id']}/cancel", headers=world.learner(account), json={}
    )
    assert r.status_code == 202
    from tests.support import eventually

    await eventually(lambda: world.balance(account), lambda b: b["reserved"] == 0)
    # and payments has applied the ledger's answer (released), before the snapshot
    await eventually(
        lambda: world.enrolment(e["enrolment_id"]), lambda x: x["released"] == x["covered"]
    )
    before = await snapshot(world, account, e["enrolment_id"])
    await twice(world, "ledger", await sent(world, "payments", "ReleaseRequested"))
    await twice(world, "payments", await sent(world, "ledger", "ReservationReleased"))
    assert await snapshot(world, account, e["enrolment_id"]) == before
    assert before[1] == 0 and before[0] == 300_000


async def test_a_suspension_delivered_twice_holds_once(world: World) -> None:
    account = await world.account(credit=300_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    world.session_over(e)
    claim = await world.claim("p1", e["enrolment_id"], rate=100)
    await world.captured(claim.json()["claim_id"])
    await world.provider_status("p1", "suspended")
    await world.provider_status("p1", "suspended")
    assert len(await sent(world, "payments", "ClaimHeld")) == 1
    assert (await world.release_claim(claim.json()["claim_id"]))["status"] == "captured"
    assert len(await sent(world, "ledger", "ReservationCaptured")) == 1


async def test_requests_retried_with_their_idempotency_key_act_once(world: World) -> None:
    account = await world.account(credit=300_000)
    course = await world.course("p1", starts_in=-1)
    e = (await world.propose("p1", account, course)).json()
    headers = {**world.learner(account), "Idempotency-Key": "consent-1"}
    path = f"/v1/enrolments/{e['enrolment_id']}/confirm"
    first = await world.c.post(path, headers=headers, json={})
    again = await world.c.post(path, headers=headers, json={})
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    await world.settled(e["enrolment_id"])
    assert len(await sent(world, "payments", "EnrolmentRequested")) == 1
    world.session_over(e)
    evidence = {
        "started_on": e["starts_on"],
        "completion_rate": 100,
        "completed_on": e["ends_on"],
    }
    body = {"enrolment_id": e["enrolment_id"], "milestone": "completion", "evidence": evidence}
    claim_headers = {**world.provider("p1"), "Idempotency-Key": "claim-1"}
    c1 = await world.c.post("/v1/claims", headers=claim_headers, json=body)
    c2 = await world.c.post("/v1/claims", headers=claim_headers, json=body)
    assert c1.json() == c2.json() and c1.json()["status"] == "approved"
    assert len(await sent(world, "payments", "CaptureRequested")) == 1
    await world.captured(c1.json()["claim_id"])
    assert (await world.balance(account))["spent_total"] == 100_000
