"""Scenario replayed through the HTTP API, exactly as reported:

"In the catalogue every agency acts nationally: it accredits or suspends any provider, and
revokes any learner's credential. A 409 on opening an account hands any agency the account
id of a person managed by another agency."

Refused: another agency gets the 404 a missing provider or credential gets, and afterwards
the providers, credentials, the catalogue's read models and its outbox are exactly as
before. The agency that answers for them, and ``qa``, still can. (The 409 part is replayed
against the accounts service in tests/integration/accounts/test_scoping.py.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.pseudonym import pseudonymous_actor
from tests.integration.support.catalogue import catalogue, certified, fingerprint, provider_body
from tests.support import bearer

pytestmark = pytest.mark.postgres


def as_missing(r: Any, kind: str, real: str, twin: Any, unknown: str) -> None:
    """``r`` (about ``real``) is the very answer ``twin`` (about ``unknown``) is."""
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == f"no {kind} {real}"
    assert twin.status_code == 404 and twin.json()["detail"] == f"no {kind} {unknown}"
    assert {k: v for k, v in r.json().items() if k not in ("detail", "instance")} == {
        k: v for k, v in twin.json().items() if k not in ("detail", "instance")
    }


async def test_another_agency_neither_accredits_suspends_nor_revokes(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        other = bearer(cat.settings, "agency", "desk-be", agency_id="pes-be")
        registered, _ = await cat.provider(accredit=False)  # by pes-fr, waiting for accreditation
        accredited, owner = await cat.provider()  # by pes-fr, accredited, with a course
        course = await cat.approved(owner)
        learner = uuid.uuid4()
        await cat.open_account(learner, "pes-fr")
        credential = await certified(cat, course, learner)
        before = await fingerprint(cat)
        unknown = str(uuid.uuid4())

        # "it accredits or suspends any provider"
        r = await cat.c.post(
            f"/v1/providers/{registered}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=other,
        )
        twin = await cat.c.post(
            f"/v1/providers/{unknown}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=other,
        )
        as_missing(r, "provider", registered, twin, unknown)
        r = await cat.c.post(
            f"/v1/providers/{accredited}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=other,
        )
        twin = await cat.c.post(
            f"/v1/providers/{unknown}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=other,
        )
        as_missing(r, "provider", accredited, twin, unknown)
        # nor reads them (its payout details included)
        r = await cat.c.get(f"/v1/providers/{accredited}", headers=other)
        twin = await cat.c.get(f"/v1/providers/{unknown}", headers=other)
        as_missing(r, "provider", accredited, twin, unknown)

        # "and revokes any learner's credential"
        r = await cat.c.post(
            f"/v1/credentials/{credential}/revoke", json={"reason_code": "fraud"}, headers=other
        )
        twin = await cat.c.post(
            f"/v1/credentials/{unknown}/revoke", json={"reason_code": "fraud"}, headers=other
        )
        as_missing(r, "credential", credential, twin, unknown)
        r = await cat.c.get(f"/v1/credentials/{credential}", headers=other)
        twin = await cat.c.get(f"/v1/credentials/{unknown}", headers=other)
        as_missing(r, "credential", credential, twin, unknown)
        r = await cat.c.get(f"/v1/credentials?account_id={learner}", headers=other)
        assert r.status_code == 404 and r.json()["detail"] == f"no account {learner}"

        # nothing changed
        assert await fingerprint(cat) == before
        for kind in ("ProviderAccredited", "ProviderSuspended", "CredentialRevoked"):
            assert [e["data"].get("provider_id") for e in await cat.events(kind)] == (
                [accredited] if kind == "ProviderAccredited" else []
            )

        # the agency that answers for them still can, and so can qa for another provider
        fr = bearer(cat.settings, "agency", "desk-fr", agency_id="pes-fr")
        r = await cat.c.post(
            f"/v1/providers/{accredited}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=fr,
        )
        assert r.status_code == 200 and r.json()["status"] == "suspended"
        qa = bearer(cat.settings, "qa", "inspector-1")
        r = await cat.c.post(
            f"/v1/providers/{registered}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=qa,
        )
        assert r.status_code == 200 and r.json()["status"] == "accredited"
        r = await cat.c.post(
            f"/v1/credentials/{credential}/revoke",
            json={"reason_code": "fraud"},
            headers=cat.agency,
        )
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        # the events name who acted by a keyed pseudonym, never the token's subject
        actors = [e["actor"] for e in await cat.events("Provider%")][-2:]
        pepper = cat.settings.actor_pepper
        assert actors == [
            pseudonymous_actor("agency:desk-fr", pepper),
            pseudonymous_actor("qa:inspector-1", pepper),
        ]
        assert actors[0].startswith("agency:p-") and actors[1].startswith("qa:p-")


async def test_credentials_follow_the_account_to_its_new_agency(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        other = bearer(cat.settings, "agency", "desk-be", agency_id="pes-be")
        _, owner = await cat.provider()
        course = await cat.approved(owner)
        learner = uuid.uuid4()
        await cat.open_account(learner, "pes-fr")
        credential = await certified(cat, course, learner)
        assert (await cat.c.get(f"/v1/credentials/{credential}", headers=other)).status_code == 404

        await cat.transfer_account(learner, "pes-fr", "pes-be")
        old = await cat.c.get(f"/v1/credentials/{credential}", headers=cat.agency)
        assert old.status_code == 404
        r = await cat.c.post(
            f"/v1/credentials/{credential}/revoke",
            json={"reason_code": "fraud"},
            headers=cat.agency,
        )
        assert r.status_code == 404
        assert (await cat.c.get(f"/v1/credentials/{credential}", headers=other)).status_code == 200
        r = await cat.c.post(
            f"/v1/credentials/{credential}/revoke", json={"reason_code": "fraud"}, headers=other
        )
        assert r.status_code == 200 and r.json()["status"] == "revoked"


async def test_a_duplicate_registration_is_named_only_to_its_agency(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        other = bearer(cat.settings, "agency", "desk-be", agency_id="pes-be")
        body = provider_body()
        r = await cat.c.post("/v1/providers", json=body, headers=cat.agency)
        pid = r.json()["provider_id"]
        before = await fingerprint(cat)
        r = await cat.c.post("/v1/providers", json=body, headers=other)
        assert r.status_code == 409 and r.json()["code"] == "registered_elsewhere"
        assert pid not in r.text and "pes-fr" not in r.text
        r = await cat.c.post("/v1/providers", json=body, headers=cat.agency)
        assert r.status_code == 409 and r.json()["provider_id"] == pid
        assert await fingerprint(cat) == before


async def test_course_decisions_belong_to_the_provider_s_agency_or_qa(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        other = bearer(cat.settings, "agency", "desk-be", agency_id="pes-be")
        _, owner = await cat.provider()
        course = await cat.course(owner)
        cid = course["course_id"]
        assert (await cat.c.post(f"/v1/courses/{cid}/submit", headers=owner)).status_code == 200
        before = await fingerprint(cat)
        for action in ("approve", "reject"):
            r = await cat.c.post(
                f"/v1/courses/{cid}/{action}", json={"reason_code": "other"}, headers=other
            )
            assert r.status_code == 404 and r.json()["detail"] == f"no course {cid}"
        assert await fingerprint(cat) == before
        # another agency's review queue does not hold it; the provider's agency's does
        queue = await cat.c.get("/v1/courses?status=submitted&limit=200", headers=other)
        assert cid not in {c["course_id"] for c in queue.json()["items"]}
        queue = await cat.c.get("/v1/courses?status=submitted&limit=200", headers=cat.agency)
        assert cid in {c["course_id"] for c in queue.json()["items"]}
        qa = bearer(cat.settings, "qa", "inspector-1")
        r = await cat.c.post(
            f"/v1/courses/{cid}/approve", json={"reason_code": "meets_criteria"}, headers=qa
        )
        assert r.status_code == 200 and r.json()["status"] == "approved"
