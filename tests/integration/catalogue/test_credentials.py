"""Micro-credentials: issued on a certified completion, verified, tampered, revoked."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.catalogue.domain.credentials.signing import derive_issuer_key, sign
from shared.bus import Message, topic_for
from shared.events import Envelope
from shared.events.payments import ClaimReversed
from tests.integration.support.catalogue import Catalogue, catalogue, certify, verify
from tests.support import bearer, eventually

pytestmark = pytest.mark.postgres


async def issued(cat: Catalogue, learner: dict[str, str]) -> list[dict[str, Any]]:
    r = await cat.c.get("/v1/credentials", headers=learner)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()
    return items


async def test_issue_verify_tamper_revoke(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        enrolment = uuid.uuid4()
        envelope = await certify(cat, course, cat.learner_id, enrolment)
        credentials = await eventually(lambda: issued(cat, cat.learner), lambda c: len(c) == 1)
        credential = credentials[0]
        cid = credential["credential_id"]
        document = credential["credential"]

        # the document: an Open Badges 3.0 credential with every EU element
        assert document["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
        subject = document["credentialSubject"]
        assert subject["id"] == f"urn:uuid:{cat.learner_id}"
        assert subject["achievement"]["achievementType"] == "MicroCredential"
        mc = subject["microCredential"]
        assert mc["learnerIdentification"] == f"urn:uuid:{cat.learner_id}"
        assert mc["title"] == "Certificate in basic arc welding"
        assert mc["grade"] == "pass" and mc["dateOfIssuing"] is not None
        for element in (
            "issuerCountryRegion",
            "awardingBody",
            "learningOutcomes",
            "notionalWorkload",
            "level",
            "typeOfAssessment",
            "formOfParticipation",
            "typeOfQualityAssurance",
        ):
            assert mc[element], element
        assert document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
        assert "national" not in json.dumps(document)

        # who may read it: the learner, the issuing provider, the managing agency
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=cat.learner)).status_code == 200
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=provider)).status_code == 200
        # until the accounts events say which agency manages the learner, no agency reads it
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=cat.agency)).status_code == 404
        await cat.open_account(cat.learner_id, "pes-fr")
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=cat.agency)).status_code == 200
        # anyone else: the 404 of a credential that does not exist
        stranger = bearer(cat.settings, "learner", str(uuid.uuid4()))
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=stranger)).status_code == 404
        _, rival = await cat.provider()
        assert (await cat.c.get(f"/v1/credentials/{cid}", headers=rival)).status_code == 404
        assert (await cat.c.get(f"/v1/credentials/{cid}")).status_code == 401

        # redelivery of the same completion issues nothing new
        await cat.app.state.bus.publish(
            [Message(topic_for("payments"), str(cat.learner_id), envelope.to_bytes())]
        )
        await certify(cat, course, cat.learner_id, enrolment)  # same enrolment, new event
        # the inbox holds the completion, the account's opening and the new event
        issued_events = await eventually(
            lambda: cat.scalar("SELECT count(*) FROM catalogue.inbox"), lambda n: n == 3
        )
        assert issued_events == 3
        assert len(await issued(cat, cat.learner)) == 1
        events = await cat.events("CredentialIssued")
        assert len(events) == 1 and events[0]["data"]["credential_id"] == cid
        assert events[0]["data"]["course_version"] == 1

        # valid as issued, whatever the key order or whitespace it is presented with
        result = await verify(cat, document)
        assert result["valid"] is True, result
        assert result["checks"] == {
            "format": "ok",
            "issuer": "ok",
            "key": "ok",
            "signature": "ok",
            "revocation": "ok",
        }
        assert result["revoked"] is False
        reordered = json.loads(json.dumps(document, sort_keys=True, indent=2))
        assert (await verify(cat, reordered))["valid"] is True
        # the GET reply itself may be presented
        assert (await verify(cat, credential))["valid"] is True

        # one changed byte anywhere breaks the signature
        raw = json.dumps(document).encode()
        at = raw.index(b"basic arc welding") + 1
        tampered_raw = raw[:at] + b"A" + raw[at + 1 :]
        r = await cat.c.post(
            "/v1/credentials/verify",
            content=tampered_raw,
            headers={"content-type": "application/json"},
        )
        tampered = r.json()
        assert tampered["valid"] is False and tampered["signature_valid"] is False
        assert tampered["checks"]["signature"] == "failed"
        grade_changed = json.loads(json.dumps(document))
        grade_changed["credentialSubject"]["microCredential"]["grade"] = "distinction"
        assert (await verify(cat, grade_changed))["checks"]["signature"] == "failed"
        no_proof = {k: v for k, v in document.items() if k != "proof"}
        assert (await verify(cat, no_proof))["checks"]["format"] == "failed"

        # revocation: by the managing agency (or qa) only, then verification says so
        reason = {"reason_code": "fraud", "note": "claim reversed for fraud"}
        for headers in (cat.learner, provider):
            r = await cat.c.post(f"/v1/credentials/{cid}/revoke", json=reason, headers=headers)
            assert r.status_code == 403
        r = await cat.c.post(f"/v1/credentials/{cid}/revoke", json=reason, headers=cat.agency)
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        again = await cat.c.post(f"/v1/credentials/{cid}/revoke", json=reason, headers=cat.agency)
        assert again.status_code == 409
        result = await verify(cat, document)
        assert result["valid"] is False and result["revoked"] is True
        assert result["signature_valid"] is True
        assert result["checks"]["revocation"] == "revoked"
        assert result["revocation"]["reason"] == "fraud"
        revoked = (await cat.events("CredentialRevoked"))[0]["data"]
        assert revoked["reason_code"] == "fraud" and "claim reversed" not in json.dumps(revoked)
        assert revoked["credential_id"] == cid and revoked["account_id"] == str(cat.learner_id)


async def test_a_credential_signed_with_another_key_fails(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        await certify(cat, course, cat.learner_id, uuid.uuid4())
        document = (await eventually(lambda: issued(cat, cat.learner), bool))[0]["credential"]
        unsigned = {k: v for k, v in document.items() if k != "proof"}
        forger = derive_issuer_key("not the issuer's seed")

        # signed with another key, claiming to be our issuer's key
        forged = sign(unsigned, forger, datetime.now(UTC))
        forged["proof"]["verificationMethod"] = document["proof"]["verificationMethod"]
        result = await verify(cat, forged)
        assert result["valid"] is False and result["checks"]["signature"] == "failed"

        # signed with another key, honestly naming it: signature fine, issuer not trusted
        other = sign({**unsigned, "issuer": {"id": forger.did}}, forger, datetime.now(UTC))
        result = await verify(cat, other)
        assert result["valid"] is False
        assert result["checks"]["signature"] == "ok"
        assert result["checks"]["issuer"] == "unknown"

        # the issuer's key is published
        did = (await cat.c.get("/v1/credentials/issuer")).json()
        assert did["id"] == document["issuer"]["id"]
        assert did["verificationMethod"][0]["id"] == document["proof"]["verificationMethod"]


async def test_a_completion_for_an_unknown_course_version_issues_nothing(db_url: str) -> None:
    async with catalogue(db_url, consumer_max_attempts=1) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        await certify(cat, course, cat.learner_id, uuid.uuid4(), version=7)
        error = await eventually(
            lambda: cat.scalar("SELECT error FROM catalogue.inbox WHERE outcome = 'dead_lettered'")
        )
        assert "has no version 7" in error
        assert await cat.scalar("SELECT count(*) FROM catalogue.credentials") == 0
        assert await cat.events("CredentialIssued") == []


async def test_a_reversed_completion_revokes_its_credential(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        enrolment = uuid.uuid4()
        await certify(cat, course, cat.learner_id, enrolment)
        [credential] = await eventually(lambda: issued(cat, cat.learner), lambda c: len(c) == 1)
        reversed_claim = ClaimReversed(
            claim_id=uuid.uuid4(),
            enrolment_id=enrolment,
            provider_id=course["provider_id"],
            milestone="completion",
            amount=100_000,
            recovery=True,
        )
        envelope = Envelope.wrap(reversed_claim, source="/ila/payments")
        message = Message(topic_for("payments"), reversed_claim.aggregate_id(), envelope.to_bytes())
        await cat.app.state.bus.publish([message])
        result = await eventually(
            lambda: verify(cat, credential["credential"]), lambda r: r["revoked"] is True
        )
        assert result["valid"] is False
        [revoked] = await cat.events("CredentialRevoked")
        assert revoked["data"]["reason_code"] == "capture_reversed"
        await cat.app.state.bus.publish([message])  # delivered twice: revoked once
        assert len(await cat.events("CredentialRevoked")) == 1
