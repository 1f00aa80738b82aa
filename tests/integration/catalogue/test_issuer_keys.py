"""Issuer keys that rotate and can be revoked from a date; revocation as a Bitstring Status
List that a verifier caches and checks with the network cut."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from services.catalogue.deps import CatalogueComponents
from services.catalogue.domain.credentials import status_list, verifier
from shared.service import components_of
from tests.integration.support.catalogue import Catalogue, catalogue, issue_one, verify
from tests.support import bearer

pytestmark = pytest.mark.postgres


def advance(cat: Catalogue, delta: timedelta) -> None:
    components_of(cat.rt, CatalogueComponents).clock.advance(delta)


async def test_rotation_keeps_old_credentials_valid(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        old = await issue_one(cat, course)
        issuer = old["credential"]["issuer"]["id"]
        assert old["credential"]["proof"]["verificationMethod"] == f"{issuer}#k0"

        admin = bearer(cat.settings, "admin")
        assert (
            await cat.c.post("/v1/credentials/issuer/rotate", headers=cat.agency)
        ).status_code == 403
        r = await cat.c.post("/v1/credentials/issuer/rotate", headers=admin)
        assert r.status_code == 201, r.text
        kid = r.json()["kid"]
        new = await issue_one(cat, course)
        assert new["credential"]["proof"]["verificationMethod"] == f"{issuer}#{kid}"

        keys = (await cat.c.get("/v1/credentials/issuer")).json()
        assert keys["id"] == issuer
        status = {m["id"].split("#")[1]: m["status"] for m in keys["verificationMethod"]}
        assert status == {kid: "current", "k0": "retired"}
        assert keys["verificationMethod"][0]["id"].endswith(f"#{kid}")

        for presented in (old["credential"], new["credential"]):
            result = await verify(cat, presented)
            assert result["valid"] is True, result
        assert (await verify(cat, old["credential"]))["key_id"] == f"{issuer}#k0"
        events = await cat.events("IssuerKeyRotated")
        assert [e["data"]["kid"] for e in events] == [kid]
        assert events[0]["data"]["retired_kid"] == "k0"


async def test_a_revoked_key_refuses_what_it_signed_after_the_date(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        before = await issue_one(cat, course)
        issued_before = datetime.fromisoformat(before["credential"]["validFrom"])
        advance(cat, timedelta(hours=2))
        after = await issue_one(cat, course)
        assert after["credential"]["proof"]["verificationMethod"].endswith("#k0")

        qa = bearer(cat.settings, "qa")
        admin = bearer(cat.settings, "admin")
        revoked_after = issued_before + timedelta(hours=1)
        body = {"revoked_after": revoked_after.isoformat(), "reason_code": "compromised"}
        url = "/v1/credentials/issuer/keys/k0/revoke"
        # only qa proposes; a bad date or an unknown key changes nothing
        assert (await cat.c.post(url, json=body, headers=admin)).status_code == 403
        future = {
            **body,
            "revoked_after": (datetime.now().astimezone() + timedelta(days=9)).isoformat(),
        }
        assert (await cat.c.post(url, json=future, headers=qa)).status_code == 422
        r = await cat.c.post("/v1/credentials/issuer/keys/nokey/revoke", json=body, headers=qa)
        assert r.status_code == 404
        r = await cat.c.post(url, json=body, headers=qa)
        assert r.status_code == 202, r.text
        proposal = r.json()
        assert proposal["summary"]["credentials_refused"] == 1
        # nothing happens before a second person (an admin) approves
        assert (await verify(cat, after["credential"]))["valid"] is True
        approve = f"/v1/catalogue/approvals/{proposal['approval_id']}/approve"
        assert (await cat.c.post(approve, headers=qa)).status_code == 403
        r = await cat.c.post(approve, headers=admin)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert result["kid"] == "k0" and result["new_key"] and result["credentials_refused"] == 1

        # signed before the date: still valid; after: refused as signed by a revoked key
        assert (await verify(cat, before["credential"]))["valid"] is True
        refused = await verify(cat, after["credential"])
        assert refused["valid"] is False and refused["checks"]["key"] == "revoked"
        assert refused["signature_valid"] is True
        assert any("revoked key" in e for e in refused["errors"])
        # the /verify page says so too
        r = await cat.c.get(f"/verify?credential={after['credential_id']}")
        assert 'data-verdict="key_revoked"' in r.text

        keys = (await cat.c.get("/v1/credentials/issuer")).json()
        k0 = next(m for m in keys["verificationMethod"] if m["id"].endswith("#k0"))
        assert k0["status"] == "revoked"
        assert datetime.fromisoformat(k0["revoked"]) == revoked_after.replace(microsecond=0)
        # the revoked key was the current one: a new key signs from now on
        fresh = await issue_one(cat, course)
        assert fresh["credential"]["proof"]["verificationMethod"].endswith(f"#{result['new_key']}")
        assert (await verify(cat, fresh["credential"]))["valid"] is True
        [event] = await cat.events("IssuerKeyRevoked")
        assert event["data"]["kid"] == "k0" and event["data"]["reason_code"] == "compromised"
        # a key is revoked once
        assert (await cat.c.post(url, json=body, headers=qa)).status_code == 409


async def test_status_list_verifies_offline_from_a_cache(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, provider = await cat.provider()
        course = await cat.approved(provider)
        credential = await issue_one(cat, course)
        document = credential["credential"]
        entry = document["credentialStatus"]
        assert entry["type"] == "BitstringStatusListEntry"
        assert entry["statusPurpose"] == "revocation"
        list_url = entry["statusListCredential"]
        path = "/v1/credentials/status/" + list_url.rsplit("/", 1)[1]
        assert list_url == cat.settings.catalogue_public_url + path

        # fetch and cache the keys and the list, as a verifier would
        keys = (await cat.c.get("/v1/credentials/issuer")).json()
        r = await cat.c.get(path)
        assert r.status_code == 200
        assert "max-age=" in r.headers["cache-control"] and r.headers["etag"]
        stale = r.json()
        etag = r.headers["etag"]
        again = await cat.c.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert (await cat.c.get("/v1/credentials/status/999")).status_code == 404
        encoded = stale["credentialSubject"]["encodedList"]
        assert encoded.startswith("u") and len(status_list.decode(encoded)) >= 16 * 1024
        assert stale["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]

        await cat.open_account(cat.learner_id, "pes-fr")
        cid = credential["credential_id"]
        r = await cat.c.post(
            f"/v1/credentials/{cid}/revoke", json={"reason_code": "fraud"}, headers=cat.agency
        )
        assert r.status_code == 200, r.text
        r = await cat.c.get(path, headers={"If-None-Match": etag})
        assert r.status_code == 200 and r.headers["etag"] != etag
        fresh = r.json()

    # the server is gone: the verifier has only the cached documents
    offline = verifier.verify(document, keys, {list_url: stale})
    assert offline.valid is True and offline.revoked is False  # the stale list says valid
    offline = verifier.verify(document, keys, {list_url: fresh})
    assert offline.valid is False and offline.revoked is True
    assert offline.checks["revocation"] == "revoked" and offline.checks["signature"] == "ok"
    # no cached list: unknown, never valid
    unknown = verifier.verify(document, keys, {})
    assert unknown.valid is False and unknown.checks["revocation"] == "unknown"

    # the list's own signature is checked: a forged list (bits cleared) is refused
    forged = json.loads(json.dumps(fresh))
    forged["credentialSubject"]["encodedList"] = status_list.encode([])
    result = verifier.verify(document, keys, {list_url: forged})
    assert result.valid is False and result.checks["revocation"] == "unverified"
    # and so is a list signed with another key, or served for another URL
    moved = json.loads(json.dumps(fresh))
    moved["id"] = list_url + "0"
    result = verifier.verify(document, keys, {list_url: moved})
    assert result.valid is False and result.checks["revocation"] == "unverified"
