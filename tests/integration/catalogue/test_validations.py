"""Validations of prior learning: recorded by the provider of an enrolment in a course of
kind validation, once; they issue a credential of their own kind in both formats, which
verifies (online, offline and on the page) and shows as revoked once revoked; counted by
month and EQF level."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.catalogue.domain.credentials import verifier
from shared.events.payments import CompletionCertified
from tests.integration.support.catalogue import (
    Catalogue,
    catalogue,
    course_body,
    fingerprint,
    verify,
)
from tests.support import bearer, eventually

pytestmark = pytest.mark.postgres

ASSESSOR = "Chambre de métiers de Bretagne"
OUTCOME = "Weld steel plates in flat position to EN ISO 9606-1"


def validation_body(enrolment_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "enrolment_id": str(enrolment_id),
        "learning_outcomes": [OUTCOME, "Read a welding procedure specification"],
        "eqf_level": 4,
        "assessment": {
            "method": "observation",
            "assessed_on": datetime.now(UTC).date().isoformat(),
            "assessor_body": ASSESSOR,
        },
        **overrides,
    }


async def validate(
    cat: Catalogue, provider: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    r = await cat.c.post("/v1/validations", json=body, headers=provider)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def offline(cat: Catalogue, document: dict[str, Any]) -> verifier.Result:
    """Verified with nothing but the keys document and the status list, fetched once."""
    keys = (await cat.c.get("/v1/credentials/issuer")).json()
    url = document["credentialStatus"]["statusListCredential"]
    listed = (await cat.c.get("/v1/credentials/status/" + url.rsplit("/", 1)[1])).json()
    return verifier.verify(document, keys, {url: listed})


async def test_a_validation_issues_a_credential_that_verifies_in_both_formats(
    db_url: str,
) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        _, stranger = await cat.provider()
        course = await cat.approved(
            provider,
            kind="validation",
            title="Validation of welding skills",
            descriptor={**course_body()["descriptor"], "title": "Validated welding skills"},
        )
        await cat.open_account(cat.learner_id, "pes-fr")
        enrolment = await cat.enrolment(course, account_id=cat.learner_id)

        # another provider: the 404 of an unknown enrolment, nothing changes
        before = await fingerprint(cat)
        for headers, status in ((stranger, 404), (cat.agency, 403), (cat.learner, 403)):
            r = await cat.c.post(
                "/v1/validations", json=validation_body(enrolment), headers=headers
            )
            assert r.status_code == status, r.text
        r = await cat.c.post(
            "/v1/validations", json=validation_body(uuid.uuid4()), headers=provider
        )
        assert r.status_code == 404 and r.json()["code"] == "enrolment_not_found", r.text
        for bad in (
            {"eqf_level": 9},
            {"learning_outcomes": []},
            {"assessment": {"method": "guess", "assessed_on": "2020-01-01", "assessor_body": "x"}},
            {"assessment": {"method": "test", "assessed_on": "2999-01-01", "assessor_body": "x"}},
        ):
            r = await cat.c.post(
                "/v1/validations", json=validation_body(enrolment, **bad), headers=provider
            )
            assert r.status_code == 422, (bad, r.text)
        assert await fingerprint(cat) == before

        validation = await validate(cat, provider, validation_body(enrolment))
        assert validation["eqf_level"] == 4 and validation["account_id"] == str(cat.learner_id)
        assert validation["assessment"]["assessor_body"] == ASSESSOR
        # once: asking again answers the validation recorded, no second credential
        r = await cat.c.post("/v1/validations", json=validation_body(enrolment), headers=provider)
        assert r.status_code == 200 and r.json() == validation
        # payments certifying the completion issues no training credential beside it
        await cat.publish(
            CompletionCertified(
                enrolment_id=enrolment,
                account_id=cat.learner_id,
                course_id=uuid.UUID(course["course_id"]),
                course_version=course["version"],
                provider_id=course["provider_id"],
                completed_at=datetime.now(UTC),
                completion_rate=100,
            ),
            "payments",
        )
        applied = "SELECT count(*) FROM catalogue.inbox WHERE type LIKE '%CompletionCertified%'"
        await eventually(lambda: cat.scalar(applied), lambda n: n == 1)
        count = "SELECT count(*) FROM catalogue.credentials WHERE enrolment_id = :e"
        assert await cat.scalar(count, e=enrolment) == 1

        cid = validation["credential_id"]
        r = await cat.c.get(f"/v1/credentials/{cid}", headers=cat.learner)
        assert r.status_code == 200, r.text
        held = r.json()
        assert held["kind"] == "validation" and held["enrolment_id"] == str(enrolment)
        ob3 = held["credential"]
        subject = ob3["credentialSubject"]
        assert subject["achievement"]["achievementType"] == "ext:RecognitionOfPriorLearning"
        assert subject["validation"]["level"] == {"eqf": 4}
        assert subject["validation"]["learningOutcomes"][0] == OUTCOME
        assert subject["validation"]["assessment"] == {
            "method": "observation",
            "date": validation["assessment"]["assessed_on"],
            "assessorBody": ASSESSOR,
        }
        elm = (await cat.c.get(f"/v1/credentials/{cid}?format=elm", headers=cat.learner)).json()
        [claim] = elm["credentialSubject"]["hasClaim"]
        assert claim["specifiedBy"]["eqfLevel"]["id"] == "http://data.europa.eu/snb/eqf/4"
        assert claim["specifiedBy"]["learningOutcome"][0]["title"] == {"en": OUTCOME}
        [assessment] = claim["wasDerivedFrom"]
        assert assessment["type"] == "LearningAssessment"
        assert assessment["assessedBy"][0]["legalName"] == {"en": ASSESSOR}
        assert elm["credentialStatus"] == ob3["credentialStatus"]

        # both verify: online, offline from the cached documents, and on the page
        for document in (ob3, elm):
            result = await verify(cat, document)
            assert result["valid"] is True, result
            assert (await offline(cat, document)).valid
            r = await cat.c.post("/verify", data={"credential": json.dumps(document)})
            assert r.status_code == 200 and 'data-verdict="valid"' in r.text
            assert "Validated welding skills" in r.text and "EQF level 4" in r.text
        tampered = json.loads(json.dumps(ob3))
        tampered["credentialSubject"]["validation"]["level"]["eqf"] = 7
        assert (await verify(cat, tampered))["checks"]["signature"] == "failed"

        # who reads the validation
        for headers in (cat.learner, provider, cat.agency, cat.auditor):
            r = await cat.c.get(f"/v1/validations/{validation['validation_id']}", headers=headers)
            assert r.status_code == 200, r.text
        for headers in (stranger, bearer(cat.settings, "learner", str(uuid.uuid4()))):
            r = await cat.c.get(f"/v1/validations/{validation['validation_id']}", headers=headers)
            assert r.status_code == 404, r.text

        # the events: ids, codes and numbers, never the wording or the assessor
        [event] = await cat.events("PriorLearningValidated")
        data = event["data"]
        assert data["validation_id"] == validation["validation_id"]
        assert data["eqf_level"] == 4 and data["outcomes"] == 2 and data["method"] == "observation"
        assert ASSESSOR not in json.dumps(event) and "Weld" not in json.dumps(event)
        assert [e["data"]["credential_id"] for e in await cat.events("CredentialIssued")] == [cid]

        # counted by month and EQF level
        r = await cat.c.get("/v1/catalogue/statistics", headers=cat.auditor)
        assert r.status_code == 200, r.text
        totals = r.json()["totals"]
        assert totals["validations"] == 1 and totals["by_eqf_level"]["4"] == 1
        month = validation["recorded_at"][:7]
        [row] = [m for m in r.json()["by_month"] if m["month"] == month]
        assert row["validations"] == 1
        other = bearer(cat.settings, "agency", agency_id="pes-de")
        r = await cat.c.get("/v1/catalogue/statistics", headers=other)
        assert r.json()["totals"]["validations"] == 0
        assert (await cat.c.get("/v1/catalogue/statistics", headers=provider)).status_code == 403

        # revoked: both forms show it, online and from a freshly fetched list
        r = await cat.c.post(
            f"/v1/credentials/{cid}/revoke", json={"reason_code": "fraud"}, headers=cat.agency
        )
        assert r.status_code == 200, r.text
        for document in (ob3, elm):
            result = await verify(cat, document)
            assert result["valid"] is False and result["checks"]["revocation"] == "revoked"
            assert (await offline(cat, document)).checks["revocation"] == "revoked"


async def test_only_a_validation_enrolment_gets_a_validation(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        training = await cat.approved(provider)
        enrolment = await cat.enrolment(training, account_id=cat.learner_id)
        r = await cat.c.post("/v1/validations", json=validation_body(enrolment), headers=provider)
        assert r.status_code == 409 and r.json()["code"] == "not_a_validation_enrolment", r.text

        course = await cat.approved(provider, kind="validation")
        cancelled = await cat.enrolment(course, cancelled=True)
        r = await cat.c.post("/v1/validations", json=validation_body(cancelled), headers=provider)
        assert r.status_code == 409 and r.json()["code"] == "enrolment_not_under_way", r.text
        assert await cat.scalar("SELECT count(*) FROM catalogue.validations") == 0
        assert await cat.scalar("SELECT count(*) FROM catalogue.credentials") == 0
