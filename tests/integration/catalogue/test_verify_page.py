"""The public credential check page: valid, tampered, revoked, not ours, garbage, upload,
and the shareable link of a credential we issued."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.catalogue.domain.credentials.signing import derive_issuer_key, sign
from tests.integration.support.catalogue import Catalogue, catalogue, certified, fingerprint

pytestmark = pytest.mark.postgres


async def issue(cat: Catalogue) -> dict[str, Any]:
    _, provider = await cat.provider(name="Atelier Numérique")
    course = await cat.approved(provider, ects=2.5, workload_hours=70, isced_field="0715")
    credential_id = await certified(cat, course, cat.learner_id)
    r = await cat.c.get(f"/v1/credentials/{credential_id}", headers=cat.learner)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def paste(cat: Catalogue, text: str, **headers: str) -> httpx.Response:
    # the browser's form: multipart, as the page's form sends it
    return await cat.c.post(
        "/verify", data={"credential": text}, files={"file": ("", b"")}, headers=headers
    )


def verdict(page: str) -> str | None:
    match = re.search(r'data-verdict="([a-z_]+)"', page)
    return match.group(1) if match else None


async def test_a_valid_credential_shows_what_it_certifies(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        issued = await issue(cat)
        document = issued["credential"]
        assert issued["verification_page"] == f"/verify?credential={issued['credential_id']}"

        form = await cat.c.get("/verify")
        assert form.status_code == 200 and "<script" not in form.text
        assert 'enctype="multipart/form-data"' in form.text
        assert '<label for="credential"' in form.text and '<label for="file"' in form.text

        r = await paste(cat, json.dumps(document, indent=2))
        assert r.status_code == 200, r.text
        page = r.text
        assert verdict(page) == "valid"
        assert "nobody has changed it since" in page
        # the standard elements, in plain words
        for shown in (
            "Certificate in basic arc welding",  # title
            "EQF level 3",
            "ISCED-F 0715",
            "70 hours",
            "2.5 ECTS",
            "Weld steel plates safely",  # a learning outcome
            "Atelier Numérique",  # the provider
            document["issuer"]["name"],  # the issuer
            f"urn:uuid:{cat.learner_id}",
        ):
            assert shown in page, shown
        assert re.search(r"Date of issue</dt><dd>\d{1,2} \w{3} \d{4}", page)
        assert r.headers["cache-control"] == "no-store"

        # the reply of GET /v1/credentials/{id} is accepted as it is
        r = await paste(cat, json.dumps(issued))
        assert verdict(r.text) == "valid"

        # the holder's link shows the same check, from what we hold
        r = await cat.c.get(issued["verification_page"])
        assert r.status_code == 200 and verdict(r.text) == "valid"
        assert issued["credential_id"] in r.text


async def test_tampered_revoked_and_foreign_credentials(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        issued = await issue(cat)
        document = issued["credential"]

        changed = json.loads(json.dumps(document))
        changed["credentialSubject"]["microCredential"]["level"]["eqf"] = 7
        r = await paste(cat, json.dumps(changed))
        assert r.status_code == 200 and verdict(r.text) == "tampered"
        assert "not confirmed" in r.text and "Do not rely on what it says" in r.text

        forger = derive_issuer_key("someone else's seed")
        unsigned = {k: v for k, v in document.items() if k != "proof"}
        foreign = sign({**unsigned, "issuer": {"id": forger.did}}, forger, datetime.now(UTC))
        r = await paste(cat, json.dumps(foreign))
        assert r.status_code == 200 and verdict(r.text) == "not_ours"

        cid = issued["credential_id"]
        r = await cat.c.post(
            f"/v1/credentials/{cid}/revoke", json={"reason_code": "fraud"}, headers=cat.agency
        )
        if r.status_code == 404:  # the agency must manage the learner's account first
            await cat.open_account(cat.learner_id, "pes-fr")
            r = await cat.c.post(
                f"/v1/credentials/{cid}/revoke", json={"reason_code": "fraud"}, headers=cat.agency
            )
        assert r.status_code == 200, r.text
        r = await paste(cat, json.dumps(document))
        assert r.status_code == 200 and verdict(r.text) == "revoked"
        assert "we revoked it on" in r.text
        r = await cat.c.get(f"/verify?credential={cid}")
        assert verdict(r.text) == "revoked"


async def test_an_uploaded_file_is_checked(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        document = (await issue(cat))["credential"]
        raw = b"\xef\xbb\xbf" + json.dumps(document).encode()  # with a byte-order mark
        r = await cat.c.post(
            "/verify",
            data={"credential": ""},
            files={"file": ("credential.json", raw, "application/json")},
        )
        assert r.status_code == 200, r.text
        assert verdict(r.text) == "valid"
        # an uploaded file wins over pasted text, and is not echoed into the text box
        r = await cat.c.post(
            "/verify",
            data={"credential": "garbage"},
            files={"file": ("credential.json", raw, "application/json")},
        )
        assert verdict(r.text) == "valid" and "garbage" not in r.text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("", 400, "Paste the credential or choose its file"),
        ("   ", 400, "Paste the credential or choose its file"),
        ("this is not json", 400, "it is not JSON"),
        ('{"a": ', 400, "it is not JSON"),
        ("[" * 100_000 + "]" * 100_000, 413, "larger than 64 KB"),
        ("[" * 30_000 + "]" * 30_000, 400, "it is not JSON"),  # nested past recursion
        ("[1, 2, 3]", 422, "not a credential we can check"),
        ('"a string"', 422, "not a credential we can check"),
        ('{"id": "urn:uuid:x", "type": ["VerifiableCredential"]}', 422, "no signature"),
        ('{"proof": "yes"}', 422, "not a credential we can check"),
        ('{"proof": {"type": "DataIntegrityProof"}}', 422, "not a credential we can check"),
        ("1" * 5000, 400, "it is not JSON"),  # an integer past Python's digit limit
    ],
    ids=[
        "empty",
        "blank",
        "text",
        "truncated",
        "too large",
        "deep",
        "array",
        "string",
        "no proof",
        "proof not an object",
        "proof of another form",
        "huge number",
    ],
)
async def test_bad_input_shows_the_page_with_a_4xx(
    db_url: str, body: str, status: int, message: str
) -> None:
    async with catalogue(db_url) as cat:
        before = await fingerprint(cat)
        r = await paste(cat, body)
        assert r.status_code == status, r.text[:500]
        assert r.headers["content-type"].startswith("text/html")
        assert message in r.text
        assert 'role="alert"' in r.text and '<form method="post" action="/verify"' in r.text
        assert await fingerprint(cat) == before


async def test_other_bad_requests(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        # not a form
        r = await cat.c.post("/verify", json={"credential": "{}"})
        assert r.status_code == 415 and "We could not read what was sent" in r.text
        # a wrong file, larger than a credential but within what the page reads
        r = await cat.c.post(
            "/verify", files={"file": ("holiday.jpg", b"\xff\xd8" + b"\x00" * 200_000)}
        )
        assert r.status_code == 413 and "larger than 64 KB" in r.text
        # a file that is not text
        r = await cat.c.post("/verify", files={"file": ("c.json", b"\xff\xfe{\x00}\x00")})
        assert r.status_code == 400 and "We could not read what was sent" in r.text
        # far too large: the server's body limit answers before the page
        r = await cat.c.post("/verify", files={"file": ("big.bin", b"0" * (5 * 1024 * 1024))})
        assert r.status_code == 413
        # a urlencoded form works too
        r = await cat.c.post("/verify", data={"credential": "nope"})
        assert r.status_code == 400 and "it is not JSON" in r.text
        # the holder's link: not an id, or an id we never issued
        r = await cat.c.get("/verify", params={"credential": "not-an-id"})
        assert r.status_code == 400 and "does not name a credential" in r.text
        r = await cat.c.get("/verify", params={"credential": str(uuid.uuid4())})
        assert r.status_code == 404 and "We have no credential with this number" in r.text


async def test_the_page_in_french_and_german(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        document = (await issue(cat))["credential"]
        r = await paste(cat, json.dumps(document), **{"accept-language": "fr-FR,fr;q=0.9"})
        assert r.status_code == 200 and '<html lang="fr">' in r.text
        assert "Valide" in r.text and "Ce qu\u2019elle certifie" in r.text
        assert "Niveau CEC 3" in r.text and "70 heures" in r.text and "2,5 ECTS" in r.text
        r = await paste(cat, "kaputt", **{"accept-language": "de"})
        assert r.status_code == 400 and '<html lang="de">' in r.text
        assert "Es ist kein JSON" in r.text
