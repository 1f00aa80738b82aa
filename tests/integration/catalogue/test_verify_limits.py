"""The public verification endpoint does bounded work: oversized documents are refused
before they are read, adversarial fields are refused before they are decoded, and the
service keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ila.registry import all_definitions
from tests.support import running_app, settings_for

pytestmark = pytest.mark.postgres


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(all_definitions(), settings_for(db_url), run_jobs=False) as (_, c):
        yield c


def presented(method_chars: int) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential"],
        "issuer": "did:key:z6Mk",
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "proofPurpose": "assertionMethod",
            "verificationMethod": "did:key:z" + "2" * method_chars,
            "proofValue": "z" + "3" * 80,
        },
    }
    return document


@pytest.mark.parametrize("size", [150_000, 1_500_000], ids=["150 KB", "1.5 MB"])
async def test_huge_documents_are_refused_while_health_keeps_answering(
    client: httpx.AsyncClient, size: int
) -> None:
    async def health() -> list[int]:
        return [(await client.get("/healthz")).status_code for _ in range(5)]

    verified, healthy = await asyncio.gather(
        client.post("/v1/credentials/verify", json=presented(size)), health()
    )
    assert verified.status_code == 413, verified.text
    assert verified.headers["content-type"] == "application/problem+json"
    assert healthy == [200] * 5


async def test_an_oversized_key_within_the_body_limit_fails_as_a_bad_signature(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/v1/credentials/verify", json=presented(50_000))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False and body["checks"]["signature"] == "failed"
    assert "longer than" in " ".join(body["errors"])
    # a credential as issued (well-formed) still goes through the same checks
    ok = copy.deepcopy(presented(46))
    r = await client.post("/v1/credentials/verify", json=ok)
    assert r.status_code == 200 and r.json()["valid"] is False
