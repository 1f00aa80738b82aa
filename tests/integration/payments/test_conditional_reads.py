"""Following an enrolment or a claim without polling: ``ETag`` and ``If-None-Match`` (304
while unchanged) and ``Prefer: wait`` (the answer waits for the saga to move the record)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text

from shared.conditional import RowWatch
from tests.integration.support.payments import World, running

pytestmark = pytest.mark.postgres


async def _proposed(world: World) -> tuple[str, str]:
    account = await world.account(credit=150_000, employment_status="employed")
    course = await world.course("p1", price=100_000)
    r = await world.propose("p1", account, course)
    assert r.status_code == 202, r.text
    return account, r.json()["enrolment_id"]


async def test_a_read_answers_304_while_the_enrolment_is_unchanged(world: World) -> None:
    _, eid = await _proposed(world)
    path = f"/v1/enrolments/{eid}"
    first = await world.c.get(path, headers=world.provider("p1"))
    assert first.status_code == 200, first.text
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.json()["status"] == "awaiting_learner_confirmation"
    # the same read again: the same tag
    again = await world.c.get(path, headers=world.provider("p1"))
    assert again.headers["etag"] == tag and again.json() == first.json()
    for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        r = await world.c.get(path, headers={**world.provider("p1"), "If-None-Match": sent})
        assert r.status_code == 304, (sent, r.text)
        assert r.content == b"" and r.headers["etag"] == tag
    r = await world.c.get(path, headers={**world.provider("p1"), "If-None-Match": '"other"'})
    assert r.status_code == 200 and r.json() == first.json()


async def test_a_waiting_read_answers_when_the_saga_moves_the_enrolment(world: World) -> None:
    account, eid = await _proposed(world)
    path = f"/v1/enrolments/{eid}"
    provider = world.provider("p1")
    tag = (await world.c.get(path, headers=provider)).headers["etag"]

    waiting = asyncio.create_task(
        world.c.get(path, headers={**provider, "If-None-Match": tag, "Prefer": "wait=15"})
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()  # nothing changed: it waits
    started = time.monotonic()
    r = await world.confirm(account, eid)
    assert r.status_code == 202, r.text
    moved = await waiting
    assert time.monotonic() - started < 10  # woken by the change, not by the end of its wait
    assert moved.status_code == 200, moved.text
    assert moved.headers["preference-applied"] == "wait=15"
    assert moved.json()["status"] in ("reserving", "confirmed")
    assert moved.headers["etag"] != tag
    # followed to its end, one answer per change
    status, tag, answers = moved.json()["status"], moved.headers["etag"], 1
    while status != "confirmed":
        r = await world.c.get(path, headers={**provider, "If-None-Match": tag, "Prefer": "wait=15"})
        assert r.status_code == 200, r.text
        status, tag, answers = r.json()["status"], r.headers["etag"], answers + 1
    assert answers <= 3


async def test_a_waiting_read_answers_304_once_its_wait_is_over(world: World) -> None:
    _, eid = await _proposed(world)
    path = f"/v1/enrolments/{eid}"
    provider = world.provider("p1")
    tag = (await world.c.get(path, headers=provider)).headers["etag"]

    async def touch() -> None:
        # a change of the row that leaves what is sent as it was: it wakes the read, which
        # finds the same tag and waits on
        await asyncio.sleep(0.3)
        async with world.rt.sessions() as s, s.begin():
            await s.execute(
                text(
                    "UPDATE payments.enrolments SET provider_id = provider_id "
                    "WHERE enrolment_id = :e"
                ),
                {"e": eid},
            )

    started = time.monotonic()
    toucher = asyncio.create_task(touch())
    r = await world.c.get(path, headers={**provider, "If-None-Match": tag, "Prefer": "wait=2"})
    await toucher
    assert r.status_code == 304, r.text
    assert time.monotonic() - started >= 1.9
    assert r.headers["etag"] == tag


async def test_outside_the_callers_scope_a_tag_and_a_wait_change_nothing(world: World) -> None:
    _, eid = await _proposed(world)
    path = f"/v1/enrolments/{eid}"
    tag = (await world.c.get(path, headers=world.provider("p1"))).headers["etag"]
    started = time.monotonic()
    for headers in (world.provider("p2"), world.learner(str(uuid.uuid4()))):
        r = await world.c.get(path, headers={**headers, "If-None-Match": tag, "Prefer": "wait=5"})
        assert r.status_code == 404, r.text
        assert "etag" not in r.headers
    assert time.monotonic() - started < 4  # answered at once: no wait on what it cannot see
    missing = f"/v1/enrolments/{uuid.uuid4()}"
    r = await world.c.get(
        missing, headers={**world.admin, "If-None-Match": "*", "Prefer": "wait=5"}
    )
    assert r.status_code == 404, r.text


async def test_a_waiting_read_answers_when_the_learner_attests_a_claim(world: World) -> None:
    _, e = await running(world)
    r = await world.claim("p1", str(e["enrolment_id"]))
    assert r.status_code == 202, r.text
    claim_id = r.json()["claim_id"]
    await world.captured(claim_id)
    path = f"/v1/claims/{claim_id}"
    provider = world.provider("p1")
    first = await world.c.get(path, headers=provider)
    assert first.status_code == 200 and first.json()["attestation"] == "pending"
    tag = first.headers["etag"]
    waiting = asyncio.create_task(
        world.c.get(path, headers={**provider, "If-None-Match": tag, "Prefer": "wait=15"})
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()
    started = time.monotonic()
    await world.attest(claim_id)
    moved = await waiting
    assert time.monotonic() - started < 10
    assert moved.status_code == 200, moved.text
    assert moved.json()["attestation"] == "attested" and moved.headers["etag"] != tag


async def test_a_watch_full_of_waiting_reads_answers_at_once(world: World) -> None:
    _, eid = await _proposed(world)
    watch = RowWatch(world.rt.sessions, "payments.enrolments", "enrolment_id", most=0)
    version = await watch.version(uuid.UUID(eid))
    assert version is not None
    started = time.monotonic()
    assert await watch.changed(uuid.UUID(eid), version, 5) is False
    assert time.monotonic() - started < 1
    # with room, a change of another version is seen at once
    roomy = RowWatch(world.rt.sessions, "payments.enrolments", "enrolment_id")
    assert await roomy.changed(uuid.UUID(eid), "not-its-version", 5) is True
    assert await roomy.version(uuid.uuid4()) is None
