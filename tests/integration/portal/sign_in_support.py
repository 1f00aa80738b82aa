"""Support of the sign-in tests: the whole system in process with the portal signing in
against the real OIDC test provider, a person's trip through the provider's login form,
and SQL probes of the portal's tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from ila.oidc_provider import OidcProvider
from ila.registry import everything
from shared.settings import Settings
from tests.integration.support.accounts import AGENCY_ID, account_body
from tests.support import bearer, running_app, settings_for

PORTAL = "https://portal.test"


@dataclass
class Portal:
    app: FastAPI
    client: httpx.AsyncClient  # a browser of the portal: keeps its cookies
    settings: Settings

    async def open_account(self, national_id: str) -> str:
        r = await self.client.post(
            "/v1/accounts",
            json=account_body(national_id=national_id),
            headers=bearer(self.settings, "agency", agency_id=AGENCY_ID),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["account_id"])

    async def start(self, next_path: str | None = "/me") -> str:
        """GET /sign-in: the provider's authorization URL it redirects to."""
        params = {"next": next_path} if next_path is not None else {}
        r = await self.client.get("/sign-in", params=params)
        assert r.status_code == 303, r.text
        return r.headers["location"]

    async def sign_in(self, national_id: str, next_path: str | None = "/me") -> httpx.Response:
        """The whole trip: to the provider, its form, back to the callback."""
        callback = await provider_login(await self.start(next_path), national_id)
        return await self.client.get(callback)

    async def rows(self) -> list[dict[str, Any]]:
        """Every row of every table of the portal's schema, as JSON objects."""
        rt = self.app.state.runtimes["portal"]
        async with rt.sessions() as session:
            tables = list(
                await session.scalars(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'portal' AND table_type = 'BASE TABLE'"
                    )
                )
            )
            rows: list[dict[str, Any]] = []
            for table in tables:
                found = await session.scalars(
                    text(f'SELECT row_to_json(t)::text FROM portal."{table}" t')
                )
                rows += [{"table": table, **json.loads(row)} for row in found]
        return rows

    async def sessions(self) -> list[dict[str, Any]]:
        return [r for r in await self.rows() if r["table"] == "sessions"]

    async def signed_in_sessions(self) -> list[dict[str, Any]]:
        return [r for r in await self.sessions() if r["account_id"] is not None]


@asynccontextmanager
async def portal(
    db_url: str, provider: OidcProvider | None, base: str = PORTAL, **overrides: Any
) -> AsyncIterator[Portal]:
    """The four services and the portal in process, signing in against ``provider``."""
    if provider is not None:
        overrides.setdefault("oidc_issuer", provider.issuer)
    settings = settings_for(db_url, **overrides)
    async with running_app(everything(), settings, run_jobs=False) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=30) as client:
            yield Portal(app, client, settings)


async def provider_login(
    authorize_url: str, national_id: str | None, subject: str = "a-person"
) -> str:
    """Fill in the provider's login form as a person would; the callback URL it sends the
    browser back to."""
    claims = json.dumps({"national_id": national_id} if national_id is not None else {})
    async with httpx.AsyncClient(timeout=30) as browser:
        form = await browser.get(authorize_url)
        assert form.status_code == 200, form.text
        assert 'name="username"' in form.text and 'name="claims"' in form.text
        sent = await browser.post(authorize_url, data={"username": subject, "claims": claims})
    assert sent.status_code == 302, sent.text
    return sent.headers["location"]


def with_param(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def param(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def set_cookie_headers(response: httpx.Response) -> dict[str, str]:
    """The response's Set-Cookie headers by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found
