"""Opening an account through the HTTP API, in-process, on the real PostgreSQL."""

from __future__ import annotations

import pytest

from ila.registry import definition
from tests.integration.support.accounts import BODY
from tests.support import bearer, running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_open_read_and_duplicate(db_url: str) -> None:
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    async with running_app([definition("accounts")], settings) as (_, client):
        r = await client.post("/v1/accounts", json=BODY, headers=agency)
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]
        assert r.headers["location"] == f"/v1/accounts/{account_id}"
        r = await client.get(f"/v1/accounts/{account_id}", headers=agency)
        assert r.status_code == 200, r.text
        assert r.json()["personal"]["given_name"] == "Camille"
        assert "national_id" not in r.text
        again = await client.post("/v1/accounts", json=BODY, headers=agency)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["account_id"] == account_id
