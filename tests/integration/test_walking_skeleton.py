"""POST /v1/accounts → AccountOpened through the outbox → the ledger opens a wallet →
the balance answers zeros: all four services in one process, on the in-process bus."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ila.registry import all_definitions
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually, running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_all_in_one(db_url: str) -> None:
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    async with running_app(all_definitions(), settings) as (app, client):
        r = await client.post("/v1/accounts", json=BODY, headers=agency)
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]
        learner = bearer(settings, "learner", sub=account_id)
        balance = await eventually(
            lambda: client.get(f"/v1/ledger/accounts/{account_id}/balance", headers=learner),
            lambda resp: resp.status_code == 200,
        )
        body = balance.json()
        assert body["available"] == 0 and body["reserved"] == 0 and body["lots"] == []
        assert body["status"] == "open" and body["currency"] == "EUR"
        assert (await client.get("/readyz")).status_code == 200
        # the ledger's sessions run as the role that cannot change recorded events
        async with app.state.runtimes["ledger"].sessions() as session:
            assert await session.scalar(text("SELECT current_user")) == "ila_ledger_app"
        metrics = (await client.get("/metrics")).text
        assert "ila_events_published_total" in metrics and "ila_outbox_backlog" in metrics
