"""Support of the accounts tests: the service in-process on a fresh database, request
bodies, and SQL probes of what it stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ila.registry import definition
from services.accounts.deps import AccountsComponents
from services.accounts.handlers.personal import Keyring
from services.accounts.store.keys import WrappedKey
from shared.events import accounts as account_events
from shared.events.base import Event
from shared.settings import Settings
from tests.support import bearer, running_app, settings_for

PROBLEM_JSON = "application/problem+json"
AGENCY_ID = "pes-fr"
OTHER_AGENCY_ID = "pes-be"

# a person as an agency enters them
BODY = {
    "national_id": "1 85 05 78 006 084",
    "birth_date": "1985-05-12",
    "country": "FR",
    "region": "Île-de-France",
    "qualification_level": 3,
    "employment_status": "unemployed",
    "need_flags": ["disability"],
    "personal": {"given_name": "Camille", "family_name": "Martin", "email": "c@example.org"},
}


def new_national_id() -> str:
    return f"FR{uuid.uuid4().int % 10**12:012d}"


def account_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "national_id": new_national_id(),
        "birth_date": "1985-05-12",
        "country": "FR",
        "region": "Île-de-France",
        "qualification_level": 3,
        "employment_status": "unemployed",
        "need_flags": ["disability"],
        "personal": {
            "given_name": "Camille",
            "family_name": "Martin",
            "email": "camille.martin@example.org",
        },
    }
    body.update(overrides)
    return body


def assert_problem(r: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A problem response (RFC 9457): never a 500, always the problem media type."""
    assert r.status_code < 500, r.text
    if status is not None:
        assert r.status_code == status, r.text
    else:
        assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == PROBLEM_JSON, r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["type"], str) and body["type"]
    return body


def error_fields(problem: dict[str, Any]) -> set[str]:
    errors = problem.get("errors")
    assert isinstance(errors, list) and errors, problem
    return {e["field"] for e in errors}


@dataclass
class Accounts:
    """The running service plus its caller identities and a direct view of its tables."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    db: AsyncEngine
    agency: dict[str, str]
    other_agency: dict[str, str]
    auditor: dict[str, str]

    def learner(self, account_id: str) -> dict[str, str]:
        return bearer(self.settings, "learner", sub=account_id)

    def register_token(self) -> str:
        """The ``Authorization`` value of the population register (its feed only)."""
        return bearer(self.settings, "register", sub="population-register")["Authorization"]

    async def open(self, **overrides: Any) -> str:
        r = await self.client.post(
            "/v1/accounts", json=account_body(**overrides), headers=self.agency
        )
        assert r.status_code == 201, r.text
        account_id: str = r.json()["account_id"]
        return account_id

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.connect() as conn:
            return await conn.scalar(text(sql), params)

    async def count(self, table: str, where: str = "true", **params: Any) -> int:
        return int(
            await self.scalar(f"SELECT count(*) FROM accounts.{table} WHERE {where}", **params)
        )

    async def outbox(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(type, key, CloudEvents document) of every staged event, in order."""
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(text("SELECT type, key, body FROM accounts.outbox ORDER BY id"))
            ).all()
        return [(r.type, r.key, json.loads(bytes(r.body))) for r in rows]

    async def outbox_bodies(self) -> list[str]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(text("SELECT body FROM accounts.outbox"))).all()
        return [bytes(r.body).decode() for r in rows]

    def keyring(self) -> Keyring:
        """The key-encryption keys the running service wraps data keys with."""
        components = self.app.state.runtimes["accounts"].components
        assert isinstance(components, AccountsComponents)
        return components.config.keyring

    async def wrapped_key(self, account_id: uuid.UUID) -> WrappedKey:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT kek_id, wrapped_key FROM accounts.personal_keys "
                        "WHERE account_id = :a"
                    ),
                    {"a": account_id},
                )
            ).one()
        return WrappedKey(row.kek_id, bytes(row.wrapped_key))

    async def events_of(self, account_id: str, kind: str) -> list[dict[str, Any]]:
        return [
            doc["data"]
            for typ, key, doc in await self.outbox()
            if key == account_id and typ == event_type(kind)
        ]


def event_type(kind: str) -> str:
    """The CloudEvents type of the accounts event ``kind`` (its current version)."""
    model: type[Event] = getattr(account_events, kind)
    return model.cloudevent_type()


@asynccontextmanager
async def serve_accounts(db_url: str, **overrides: Any) -> AsyncIterator[Accounts]:
    settings = settings_for(db_url, **overrides)
    db = create_async_engine(db_url)
    try:
        async with running_app([definition("accounts")], settings) as (app, client):
            yield Accounts(
                app=app,
                client=client,
                settings=settings,
                db=db,
                agency=bearer(settings, "agency", sub="pes-fr-desk", agency_id=AGENCY_ID),
                other_agency=bearer(
                    settings, "agency", sub="pes-be-desk", agency_id=OTHER_AGENCY_ID
                ),
                auditor=bearer(settings, "auditor", sub="auditor-1"),
            )
    finally:
        await db.dispose()
