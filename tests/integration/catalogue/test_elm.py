"""Each credential also issued in the European Learning Model (EDC profile), signed by the
same key, verified by the same checks (API and /verify page); a tampered one is refused."""

from __future__ import annotations

import json
import re

import pytest

from services.catalogue.domain.credentials import verifier
from tests.integration.support.catalogue import catalogue, issue_one, verify

pytestmark = pytest.mark.postgres


async def test_elm_issued_verified_and_tampered(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        issued = await issue_one(cat, course)
        cid = issued["credential_id"]
        r = await cat.c.get(f"/v1/credentials/{cid}?format=elm", headers=cat.learner)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/ld+json")
        elm = r.json()
        by_accept = await cat.c.get(
            f"/v1/credentials/{cid}",
            headers={**cat.learner, "Accept": "application/ld+json; profile=elm"},
        )
        assert by_accept.json() == elm
        assert (await cat.c.get(f"/v1/credentials/{cid}?format=elm")).status_code == 401
        assert (
            await cat.c.get(f"/v1/credentials/{cid}?format=xml", headers=cat.learner)
        ).status_code == 422

        # the EDC shape: a Person with one LearningAchievement and its specification
        assert "http://data.europa.eu/snb/model/context/edc-ap" in elm["@context"]
        assert elm["type"] == ["VerifiableCredential", "EuropeanDigitalCredential"]
        assert elm["id"] == issued["credential"]["id"]
        assert elm["credentialStatus"] == issued["credential"]["credentialStatus"]
        assert (
            elm["proof"]["verificationMethod"]
            == issued["credential"]["proof"]["verificationMethod"]
        )
        [claim] = elm["credentialSubject"]["hasClaim"]
        assert claim["type"] == "LearningAchievement"
        spec = claim["specifiedBy"]
        assert spec["eqfLevel"]["id"] == "http://data.europa.eu/snb/eqf/3"
        assert spec["ISCEDFCode"][0]["id"] == "http://data.europa.eu/snb/isced-f/0715"
        assert spec["creditPoint"][0]["point"] == "2.5"
        assert spec["volumeOfLearning"] == "PT70H"
        assert [o["title"]["en"] for o in spec["learningOutcome"]] == [
            "Weld steel plates safely",
            "Read a welding procedure",
        ]
        assert claim["awardedBy"]["awardingBody"][0]["legalName"] == {"en": "Atelier Numérique"}
        assert "national" not in json.dumps(elm)

        # verified like the Open Badges form: online, offline, and on the page
        result = await verify(cat, elm)
        assert result["valid"] is True, result
        keys = (await cat.c.get("/v1/credentials/issuer")).json()
        url = elm["credentialStatus"]["statusListCredential"]
        listed = (await cat.c.get("/v1/credentials/status/" + url.rsplit("/", 1)[1])).json()
        assert verifier.verify(elm, keys, {url: listed}).valid
        r = await cat.c.post("/verify", data={"credential": json.dumps(elm)})
        assert r.status_code == 200 and 'data-verdict="valid"' in r.text
        assert "Certificate in basic arc welding" in r.text and "EQF level 3" in r.text

        # one changed value: refused
        tampered = json.loads(json.dumps(elm))
        tampered["credentialSubject"]["hasClaim"][0]["specifiedBy"]["eqfLevel"]["id"] = (
            "http://data.europa.eu/snb/eqf/7"
        )
        result = await verify(cat, tampered)
        assert result["valid"] is False and result["checks"]["signature"] == "failed"
        assert not verifier.verify(tampered, keys, {url: listed}).valid
        r = await cat.c.post("/verify", data={"credential": json.dumps(tampered)})
        assert re.search(r'data-verdict="tampered"', r.text)

        # revoking the credential revokes both forms (one bit)
        await cat.open_account(cat.learner_id, "pes-fr")
        r = await cat.c.post(
            f"/v1/credentials/{cid}/revoke", json={"reason_code": "fraud"}, headers=cat.agency
        )
        assert r.status_code == 200
        assert (await verify(cat, elm))["checks"]["revocation"] == "revoked"
