"""Courses: validation, the eligibility workflow and who may take each step, versions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.support.catalogue import Catalogue, catalogue, course_body

pytestmark = pytest.mark.postgres


def _without(path: str) -> dict[str, Any]:
    body = course_body()
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    del target[last]
    return body


def _with_session(**changes: Any) -> dict[str, Any]:
    body = course_body()
    body["sessions"][0].update(changes)
    return body


BAD = [
    ("eqf_level", course_body(eqf_level=9), "eqf_level"),
    ("eqf_level 0", course_body(eqf_level=0), "eqf_level"),
    ("eqf as text", course_body(eqf_level="4"), "eqf_level"),
    ("unknown isced", course_body(isced_field="0620"), "isced_field"),
    ("isced not digits", course_body(isced_field="ICT"), "isced_field"),
    ("negative price", course_body(price=-100), "price"),
    ("zero price", course_body(price=0), "price"),
    ("float price", course_body(price=12.5), "price"),
    (
        "end before start",
        _with_session(start="2030-05-02T09:00:00Z", end="2030-05-01T09:00:00Z"),
        "sessions.0",
    ),
    ("naive start", _with_session(start="2030-05-01T09:00:00"), "sessions.0.start"),
    ("no seats", _with_session(seats=0), "sessions.0.seats"),
    ("no sessions", course_body(sessions=[]), "sessions"),
    ("bad kind", course_body(kind="seminar"), "kind"),
    ("bad mode", course_body(mode="correspondence"), "mode"),
    ("bad language", course_body(language="xx"), "language"),
    ("no outcomes", course_body(learning_outcomes=[]), "learning_outcomes"),
    ("bad esco uri", course_body(esco_skills=["https://example.org/skill"]), "esco_skills.0"),
    ("ects 3 decimals", course_body(ects=1.125), "ects"),
    ("missing descriptor", _without("descriptor"), "descriptor"),
    (
        "missing assessment type",
        _without("descriptor.assessment_type"),
        "descriptor.assessment_type",
    ),
    ("missing awarding body", _without("descriptor.awarding_bodies"), "descriptor.awarding_bodies"),
    (
        "missing quality assurance",
        _without("descriptor.quality_assurance"),
        "descriptor.quality_assurance",
    ),
    ("missing credential title", _without("descriptor.title"), "descriptor.title"),
    (
        "missing issuer country",
        _without("descriptor.issuer_countries"),
        "descriptor.issuer_countries",
    ),
    ("missing workload", _without("workload_hours"), "workload_hours"),
    ("unknown field", course_body(colour="red"), "colour"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[b[0] for b in BAD])
async def test_bad_course_is_refused_naming_the_field_and_nothing_stored(
    db_url: str, case: str, body: dict[str, Any], field: str
) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        r = await cat.c.post("/v1/courses", json=body, headers=provider)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        fields = {e["field"] for e in r.json()["errors"]}
        assert any(f == field or f.startswith(field + ".") for f in fields), fields
        assert await cat.scalar("SELECT count(*) FROM catalogue.courses") == 0
        assert await cat.scalar("SELECT count(*) FROM catalogue.course_versions") == 0


async def test_create_and_read_with_full_micro_credential_description(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        pid, provider = await cat.provider()
        body = course_body()
        for session in body["sessions"]:
            del session["session_id"]  # the server names sessions sent without an id
        r = await cat.c.post(
            "/v1/courses", json=body, headers={**provider, "Idempotency-Key": "k1"}
        )
        assert r.status_code == 201, r.text
        course = r.json()
        assert r.headers["location"] == f"/v1/courses/{course['course_id']}"
        assert course["status"] == "draft" and course["version"] == 1
        assert course["provider_id"] == pid
        again = await cat.c.post(
            "/v1/courses", json=body, headers={**provider, "Idempotency-Key": "k1"}
        )
        assert again.status_code == 201 and again.json() == course
        other = await cat.c.post(
            "/v1/courses", json={**body, "price": 1}, headers={**provider, "Idempotency-Key": "k1"}
        )
        assert other.status_code == 422
        assert await cat.scalar("SELECT count(*) FROM catalogue.courses") == 1

        for reader in (cat.agency, cat.learner, cat.auditor, provider):
            r = await cat.c.get(f"/v1/courses/{course['course_id']}", headers=reader)
            assert r.status_code == 200
        assert (await cat.c.get(f"/v1/courses/{course['course_id']}")).status_code == 401
        mc = r.json()["micro_credential"]
        for element in (
            "learnerIdentification",
            "title",
            "issuerCountryRegion",
            "awardingBody",
            "dateOfIssuing",
            "learningOutcomes",
            "notionalWorkload",
            "level",
            "typeOfAssessment",
            "formOfParticipation",
            "typeOfQualityAssurance",
            "prerequisites",
            "supervisionAndIdentityVerification",
            "grade",
            "integrationStackability",
            "furtherInformation",
        ):
            assert element in mc
        assert mc["notionalWorkload"] == {"hours": 70, "ects": 2.5}
        assert mc["level"] == {"eqf": 3}
        assert mc["formOfParticipation"] == "onsite"
        missing = await cat.c.get(f"/v1/courses/{uuid.uuid4()}", headers=cat.agency)
        assert missing.status_code == 404


async def _step(cat: Catalogue, cid: str, action: str, headers: dict[str, str]) -> int:
    codes = {"approve": "meets_criteria", "reject": "not_eligible", "withdraw": "replaced"}
    body = {"reason_code": codes[action], "note": "because"} if action in codes else None
    r = await cat.c.post(f"/v1/courses/{cid}/{action}", json=body, headers=headers)
    return r.status_code


async def test_workflow_transitions_and_who_may_take_them(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        _, rival = await cat.provider()
        cid = (await cat.course(owner))["course_id"]

        # approving or rejecting a draft: the agency may act, but not on a draft
        assert await _step(cat, cid, "approve", cat.agency) == 409
        assert await _step(cat, cid, "withdraw", owner) == 409
        # submit: only the owning provider
        assert await _step(cat, cid, "submit", cat.agency) == 403
        assert await _step(cat, cid, "submit", rival) == 403
        assert await _step(cat, cid, "submit", cat.learner) == 403
        assert await _step(cat, cid, "submit", owner) == 200
        assert await _step(cat, cid, "submit", owner) == 409
        # approve/reject: only an agency (a provider approving its own course is refused)
        assert await _step(cat, cid, "approve", owner) == 403
        assert await _step(cat, cid, "reject", owner) == 403
        assert await _step(cat, cid, "approve", cat.auditor) == 403
        assert await _step(cat, cid, "reject", cat.agency) == 200
        r = await cat.c.get(f"/v1/courses/{cid}", headers=owner)
        assert r.json()["status"] == "rejected" and r.json()["status_reason"] == "not_eligible"
        assert r.json()["status_note"] == "because"
        assert await _step(cat, cid, "approve", cat.agency) == 409
        # a rejected course may be submitted again and approved
        assert await _step(cat, cid, "submit", owner) == 200
        assert await _step(cat, cid, "approve", cat.agency) == 200
        assert await _step(cat, cid, "approve", cat.agency) == 409
        # withdraw: only the owner
        assert await _step(cat, cid, "withdraw", cat.agency) == 403
        assert await _step(cat, cid, "withdraw", rival) == 403
        assert await _step(cat, cid, "withdraw", owner) == 200
        # approving a withdrawn course is a conflict
        assert await _step(cat, cid, "approve", cat.agency) == 409
        assert await _step(cat, cid, "reject", cat.agency) == 409
        assert await _step(cat, cid, "withdraw", owner) == 409
        # unauthenticated: 401 everywhere
        assert (await cat.c.post(f"/v1/courses/{cid}/submit")).status_code == 401

        history = (await cat.c.get(f"/v1/courses/{cid}/history", headers=cat.agency)).json()
        assert [(h["action"], h["to_status"]) for h in history] == [
            ("create", "draft"),
            ("submit", "submitted"),
            ("reject", "rejected"),
            ("submit", "submitted"),
            ("approve", "approved"),
            ("withdraw", "withdrawn"),
        ]
        types = [e["type"].split(".")[2] for e in await cat.events("Course%")]
        assert types == [
            "CourseSubmitted",
            "CourseRejected",
            "CourseSubmitted",
            "CourseApproved",
            "CourseWithdrawn",
        ]


async def test_a_suspended_providers_course_cannot_be_approved(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        pid, owner = await cat.provider()
        cid = (await cat.course(owner))["course_id"]
        assert await _step(cat, cid, "submit", owner) == 200
        r = await cat.c.post(
            f"/v1/providers/{pid}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=cat.agency,
        )
        assert r.status_code == 200
        r = await cat.c.post(
            f"/v1/courses/{cid}/approve", json={"reason_code": "meets_criteria"}, headers=cat.agency
        )
        assert r.status_code == 409 and r.json()["code"] == "provider_ineligible"


async def test_course_approved_event_carries_what_payments_needs(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        pid, owner = await cat.provider()
        body = course_body()
        approved = await cat.approved(owner, sessions=body["sessions"])
        event = (await cat.events("CourseApproved"))[0]
        assert event["subject"] == approved["course_id"]
        data = event["data"]
        assert data["course_id"] == approved["course_id"]
        assert data["version"] == 1
        assert data["provider_id"] == pid
        assert data["price"] == body["price"] and data["currency"] == "EUR"
        assert data["isced_field"] == "0715" and data["eqf_level"] == 3
        assert data["tags"] == ["green"]
        assert [s["seats"] for s in data["sessions"]] == [12]
        assert data["sessions"][0]["session_id"] == body["sessions"][0]["session_id"]


async def test_a_change_makes_a_new_version_and_keeps_the_old(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, owner = await cat.provider()
        _, rival = await cat.provider()
        course = await cat.approved(owner)
        cid = course["course_id"]

        # a change of sessions alone keeps the course approved
        sessions = course["content"]["sessions"] + [
            {**course["content"]["sessions"][0], "session_id": str(uuid.uuid4()), "seats": 5}
        ]
        r = await cat.c.patch(f"/v1/courses/{cid}", json={"sessions": sessions}, headers=owner)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["status"] == "approved"

        # a price change sends it back to review and out of the registry
        r = await cat.c.patch(f"/v1/courses/{cid}", json={"price": 150_000}, headers=owner)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 3 and r.json()["status"] == "submitted"
        assert r.json()["content"]["price"] == 150_000
        listed = await cat.c.get("/v1/public/courses")
        assert listed.json()["items"] == []

        # nothing changes while under review
        r = await cat.c.patch(f"/v1/courses/{cid}", json={"title": "Other"}, headers=owner)
        assert r.status_code == 409
        # nor by anyone but the owner, nor with bad values
        assert (
            await cat.c.patch(f"/v1/courses/{cid}", json={"price": 1}, headers=rival)
        ).status_code == 403
        assert (
            await cat.c.patch(f"/v1/courses/{cid}", json={"price": 1}, headers=cat.agency)
        ).status_code == 403
        assert (
            await cat.c.patch(f"/v1/courses/{cid}", json={"price": -1}, headers=owner)
        ).status_code == 422
        assert (
            await cat.c.patch(f"/v1/courses/{cid}", json={"title": None}, headers=owner)
        ).status_code == 422

        versions = (await cat.c.get(f"/v1/courses/{cid}/versions", headers=cat.learner)).json()
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert [v["changed"] for v in versions] == [[], ["sessions"], ["price"]]
        assert versions[0]["content"]["price"] == 125_000
        v1 = await cat.c.get(f"/v1/courses/{cid}/versions/1", headers=cat.learner)
        assert (
            v1.json()["content"]["price"] == 125_000 and len(v1.json()["content"]["sessions"]) == 1
        )

        updates = [e["data"] for e in await cat.events("CourseUpdated")]
        assert [
            (u["version"], u["previous_version"], u["status"], u["changed"]) for u in updates
        ] == [
            (2, 1, "approved", ["sessions"]),
            (3, 2, "submitted", ["price"]),
        ]
        assert updates[1]["price"] == 150_000

        # approval of the new version says which version is now eligible
        r = await cat.c.post(
            f"/v1/courses/{cid}/approve", json={"reason_code": "meets_criteria"}, headers=cat.agency
        )
        assert r.status_code == 200
        approvals = [e["data"] for e in await cat.events("CourseApproved")]
        assert [(a["version"], a["price"]) for a in approvals] == [(1, 125_000), (3, 150_000)]
        # an unchanged patch makes no version
        r = await cat.c.patch(f"/v1/courses/{cid}", json={"price": 150_000}, headers=owner)
        assert r.status_code == 200 and r.json()["version"] == 3


async def test_course_needs_a_registered_provider(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        stranger = cat.provider_token(str(uuid.uuid4()))
        r = await cat.c.post("/v1/courses", json=course_body(), headers=stranger)
        assert r.status_code == 403
        r = await cat.c.post("/v1/courses", json=course_body(), headers=cat.agency)
        assert r.status_code == 403
        assert await cat.scalar("SELECT count(*) FROM catalogue.courses") == 0
