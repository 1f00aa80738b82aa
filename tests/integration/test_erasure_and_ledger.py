"""Erasure across services: after DELETE personal-data the personal data are unreadable
everywhere, while the ledger and every event stay whole and verifiable."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ila.registry import all_definitions
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually, running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_erasure_leaves_the_ledger_whole_and_verifiable(db_url: str) -> None:
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    auditor = bearer(settings, "auditor")
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        account = (await c.post("/v1/accounts", json=BODY, headers=agency)).json()["account_id"]
        await eventually(
            lambda: c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency),
            lambda r: r.status_code == 200,
        )
        r = await c.post(
            "/v1/ledger/grants",
            headers={**agency, "Idempotency-Key": "erasure-grant"},
            json={"account_id": account, "amount": 25_000, "funder_id": "region", "reason": "r"},
        )
        assert r.status_code == 201
        before = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()

        r = await c.delete(f"/v1/accounts/{account}/personal-data", headers=agency)
        assert r.status_code == 204
        got = (await c.get(f"/v1/accounts/{account}", headers=agency)).json()
        assert got["personal"] is None and got["personal_data_erased"] is True

        # nothing personal anywhere: not in any outbox, not in the ledger's events
        names = (
            BODY["personal"]["given_name"],
            BODY["personal"]["family_name"],  # type: ignore[index]
            BODY["national_id"],
        )
        # (the ledger's own role may not even read the other schemas: use the accounts engine)
        async with app.state.runtimes["accounts"].engine.connect() as conn:
            for table in (
                "accounts.outbox",
                "ledger.outbox",
                "payments.outbox",
                "catalogue.outbox",
            ):
                bodies = (await conn.execute(text(f"SELECT body FROM {table}"))).scalars()
                for body in bodies:
                    assert not any(n.encode() in bytes(body) for n in names), table
            events = (await conn.execute(text("SELECT data::text FROM ledger.events"))).scalars()
            assert not any(n in e for e in events for n in names)
            key = await conn.scalar(
                text("SELECT count(*) FROM accounts.personal_keys WHERE account_id = :a"),
                {"a": account},
            )
            assert key == 0

        after = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()
        assert after["items"][: len(before["items"])] == before["items"]
        balance = (await c.get(f"/v1/ledger/accounts/{account}/balance", headers=auditor)).json()
        assert balance["available"] == 25_000
        report = (await c.post("/v1/ledger/audit/verify", headers=auditor)).json()
        assert report["ok"], report
