"""The ledger's HTTP API in one process for tests: tokens for every role, the four-eyes
steps, and a snapshot of everything money is made of (to show a refusal changed nothing).
Beside it, ``Env``: the ledger's handlers straight on a migrated database, without HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from ila.registry import all_definitions
from services.ledger.commands import GrantCredits, OpenWallet
from services.ledger.deps import LedgerComponents
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import execute
from services.ledger.main import run_allocations
from shared.db import make_engine, make_sessionmaker, transaction, unit_of_work
from shared.outbox import EventContext, Outbox
from shared.service import ServiceRuntime, components_of
from shared.settings import Settings
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually, running_app, settings_for

THIS_YEAR = datetime.now(UTC).year


class Api:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app, self.c, self.settings = app, client, settings
        self.agency = bearer(settings, "agency", agency_id="pes-fr")
        self.other_agency = bearer(settings, "agency", agency_id="pes-be")
        self.admin = bearer(settings, "admin", sub="admin-ada")
        self.finance = bearer(settings, "finance", sub="fin-frank")
        self.auditor = bearer(settings, "auditor")
        self.provider = bearer(settings, "provider", provider_id="p1")
        self.qa = bearer(settings, "qa")
        self.funder = bearer(settings, "funder", funder_id="region-idf")

    @property
    def rt(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtimes["ledger"]
        return runtime

    @property
    def ledger(self) -> Ledger:
        return components_of(self.rt, LedgerComponents).ledger

    async def account(self, **overrides: object) -> str:
        body = {**BODY, "national_id": "N" + uuid.uuid4().hex[:10], **overrides}
        r = await self.c.post("/v1/accounts", json=body, headers=self.agency)
        assert r.status_code == 201, r.text
        account_id: str = r.json()["account_id"]
        await eventually(lambda: self.balance(account_id), lambda b: b.get("status") == "open")
        return account_id

    async def balance(self, account_id: str, **params: str) -> dict[str, Any]:
        r = await self.c.get(
            f"/v1/ledger/accounts/{account_id}/balance", params=params, headers=self.auditor
        )
        return r.json() if r.status_code == 200 else {}  # type: ignore[no-any-return]

    async def grant(
        self,
        account_id: str,
        amount: int,
        headers: dict[str, str] | None = None,
        key: str | None = None,
        **extra: object,
    ) -> httpx.Response:
        return await self.c.post(
            "/v1/ledger/grants",
            headers={**(headers or self.agency), "Idempotency-Key": key or str(uuid.uuid4())},
            json={
                "account_id": account_id,
                "amount": amount,
                "funder_id": "region-idf",
                "reason_code": "top_up",
                **extra,
            },
        )

    async def approve(
        self, approval_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.c.post(
            f"/v1/ledger/approvals/{approval_id}/approve", headers=headers or self.finance
        )

    async def policy(self, year: int, **terms: object) -> dict[str, Any]:
        """Propose a policy as the admin and have finance approve it."""
        r = await self.c.put(f"/v1/ledger/policies/{year}", headers=self.admin, json=terms)
        assert r.status_code == 202, r.text
        r = await self.approve(r.json()["approval_id"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"
        return r.json()  # type: ignore[no-any-return]

    async def propose_allocation(
        self, year: int, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.c.post(
            "/v1/ledger/allocations", json={"year": year}, headers=headers or self.agency
        )

    async def allocate(self, year: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Propose the allocation, have finance approve it, wait for the run to end."""
        r = await self.propose_allocation(year, headers)
        assert r.status_code == 202, r.text
        assert r.headers["location"] == f"/v1/ledger/approvals/{r.json()['approval_id']}"
        approved = await self.approve(r.json()["approval_id"])
        assert approved.status_code == 200, approved.text
        allocation_id = approved.json()["result"]["allocation_id"]
        run = await eventually(
            lambda: self.c.get(f"/v1/ledger/allocations/{allocation_id}", headers=self.admin),
            lambda resp: resp.json()["status"] != "running",
        )
        return run.json()  # type: ignore[no-any-return]

    async def snapshot(self) -> dict[str, Any]:
        """Every row of the ledger's money tables (and the proposals), in a stable order."""
        tables = {
            "events": "SELECT * FROM ledger.events ORDER BY position",
            "wallets": "SELECT * FROM ledger.wallets ORDER BY account_id",
            "lots": "SELECT * FROM ledger.lots ORDER BY lot_id",
            "reservations": "SELECT * FROM ledger.reservations ORDER BY reservation_id",
            "allocations": "SELECT * FROM ledger.allocations ORDER BY allocation_id",
            "policies": "SELECT * FROM ledger.policies ORDER BY year",
            "approvals": "SELECT * FROM ledger.approvals ORDER BY approval_id",
        }
        async with self.rt.sessions() as s:
            return {
                name: [dict(r) for r in (await s.execute(text(sql))).mappings()]
                for name, sql in tables.items()
            }


@contextlib.asynccontextmanager
async def ledger_api(db_url: str) -> AsyncIterator[Api]:
    """All services in one process, no background job but the ledger's allocation worker."""
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, client):
        api = Api(app, client, settings)
        worker = asyncio.create_task(run_allocations(api.rt))
        try:
            yield api
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


class Env:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=60)
        self.sessions = make_sessionmaker(self.engine)
        self.uow = unit_of_work(self.sessions)
        self.ledger = Ledger(Outbox("ledger"))


async def open_wallet(env: Env, amount: int = 0) -> uuid.UUID:
    account = uuid.uuid4()
    ctx = EventContext.new("test")
    async with transaction(env.sessions) as s:
        await execute(OpenWallet(account_id=account), env.ledger.context(s, ctx))
        if amount:
            await execute(
                GrantCredits(
                    account_id=account,
                    lot_id=uuid.uuid4(),
                    amount=amount,
                    funder_id="state",
                    reason_code="top_up",
                ),
                env.ledger.context(s, ctx),
            )
    return account
