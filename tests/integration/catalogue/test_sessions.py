"""Paid for training given, the catalogue's part: a change never moves a session into the
past (422), and a session learners are enrolled in is never removed (409). A refused change
leaves the course, its versions and the outbox as they were."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events.payments import EnrolmentConfirmed, EnrolmentRejected
from tests.integration.support.catalogue import Catalogue, catalogue, course_body, fingerprint
from tests.support import eventually

pytestmark = pytest.mark.postgres


def session(start: datetime, days: int = 5, seats: int = 12) -> dict[str, Any]:
    return {
        "session_id": str(uuid.uuid4()),
        "start": start.isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
        "seats": seats,
    }


def soon(days: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


async def patch(cat: Catalogue, owner: dict[str, str], cid: str, sessions: list[Any]) -> Any:
    return await cat.c.patch(f"/v1/courses/{cid}", json={"sessions": sessions}, headers=owner)


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = r.json()
    assert problem["code"] == code
    return problem


async def test_an_approved_course_s_sessions_never_move_into_the_past(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        started = session(soon(-1), days=10)  # began yesterday, runs on
        ahead = session(soon(20))
        course = await cat.approved(owner, sessions=[started, ahead])
        cid = course["course_id"]
        before = await fingerprint(cat)

        past = soon(0) - timedelta(hours=1)
        attempts = {
            "a new session that started an hour ago": [started, ahead, session(past)],
            "a future session moved to an hour ago": [
                started,
                {**ahead, "start": past.isoformat()},
            ],
            "a started session shortened to end now": [
                {**started, "end": (soon(0) + timedelta(minutes=1)).isoformat()},
                ahead,
            ],
            "a started session backdated": [
                {**started, "start": soon(-30).isoformat()},
                ahead,
            ],
        }
        for what, sessions in attempts.items():
            problem = refused(await patch(cat, owner, cid, sessions), 422, "session_in_the_past")
            assert problem["errors"][0]["field"] == "sessions", what
            assert await fingerprint(cat) == before, what

        # what stays allowed: more seats in the running session, a new future session
        r = await patch(cat, owner, cid, [{**started, "seats": 20}, ahead, session(soon(40))])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved" and r.json()["version"] == 2


async def test_a_draft_s_sessions_do_not_move_into_the_past_either(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        course = await cat.course(owner)
        cid = course["course_id"]
        before = await fingerprint(cat)
        r = await patch(cat, owner, cid, [session(soon(-2))])
        refused(r, 422, "session_in_the_past")
        assert await fingerprint(cat) == before


async def test_a_session_with_enrolments_is_not_removed(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        first, second, third = session(soon(10)), session(soon(20)), session(soon(30))
        course = await cat.approved(owner, sessions=[first, second, third])
        cid = course["course_id"]
        enrolment = await cat.enrolment(course, first["session_id"])
        await cat.enrolment(course, second["session_id"], cancelled=True)
        before = await fingerprint(cat)

        # the enrolled session cannot go, whether alone or with others
        for sessions in ([second, third], [third]):
            problem = refused(await patch(cat, owner, cid, sessions), 409, "session_has_enrolments")
            assert first["session_id"] in problem["detail"]
            assert await fingerprint(cat) == before

        # a session whose only enrolment was cancelled may go
        r = await patch(cat, owner, cid, [first, third])
        assert r.status_code == 200, r.text
        ids = [s["session_id"] for s in r.json()["content"]["sessions"]]
        assert ids == [first["session_id"], third["session_id"]]

        # the enrolment is rejected on an agency's review: now the session may go too
        await cat.publish(
            EnrolmentRejected(
                enrolment_id=enrolment,
                account_id=uuid.uuid4(),
                provider_id=course["provider_id"],
                course_id=uuid.UUID(cid),
                session_id=uuid.UUID(first["session_id"]),
                status="rejected",
                reason="rejected_on_review",
            ),
            "payments",
        )
        live = "SELECT live FROM catalogue.session_enrolments WHERE enrolment_id = :e"
        await eventually(lambda: cat.scalar(live, e=enrolment), lambda v: v is False)
        r = await patch(cat, owner, cid, [third])
        assert r.status_code == 200, r.text


async def test_a_late_confirmation_does_not_revive_a_cancelled_enrolment(db_url: str) -> None:
    """Redelivered or late, a confirmation after the cancellation keeps the seat free."""
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        first, second = session(soon(10)), session(soon(20))
        course = await cat.approved(owner, sessions=[first, second])
        enrolment = await cat.enrolment(course, first["session_id"], cancelled=True)
        seen = await cat.scalar("SELECT count(*) FROM catalogue.inbox")
        await cat.publish(
            EnrolmentConfirmed(
                enrolment_id=enrolment,
                account_id=uuid.uuid4(),
                provider_id=course["provider_id"],
                course_id=uuid.UUID(course["course_id"]),
                session_id=uuid.UUID(first["session_id"]),
                price=1,
                covered=1,
                co_payment=0,
                participation_fee=0,
            ),
            "payments",
        )
        inbox = "SELECT count(*) FROM catalogue.inbox"
        await eventually(lambda: cat.scalar(inbox), lambda n: n == seen + 1)
        r = await patch(cat, owner, course["course_id"], [second])
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "edge",
    [
        "9999-12-31T23:00:00-05:00",  # no UTC equivalent
        "0001-01-01T00:30:00+01:00",
        # credit held for a session until its claim window is over needs a date for that
        "9999-12-20T09:00:00Z",
        "2200-01-01T00:00:00Z",
    ],
)
async def test_a_session_dated_beyond_the_calendar_is_refused(db_url: str, edge: str) -> None:
    """An instant with no UTC equivalent, or so far ahead that the payments' dates past it
    would not exist: 422 naming the field, nothing drafted."""
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        before = await fingerprint(cat)
        for field in ("start", "end"):
            dates = {"start": soon(10).isoformat(), "end": soon(20).isoformat(), field: edge}
            body = course_body(sessions=[{**session(soon(10)), **dates}])
            r = await cat.c.post("/v1/courses", json=body, headers=owner)
            assert r.status_code == 422, r.text
            assert f"sessions.0.{field}" in r.text
        assert await fingerprint(cat) == before
