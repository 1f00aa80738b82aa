"""Support of the learner's pages tests: the all-in-one app (the four services and the
portal, payments on a clock the test moves), a learner with credit from two funders, a
provider and its courses in the catalogue, proposals waiting for consent, and a
credential earned through a captured completion, all made through the services' APIs.

A learner signs in by a session opened directly (the OIDC flow is tested on its own):
:meth:`Portal.sign_in` answers the cookie to send.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from ila.registry import everything
from services.payments.config import PaymentsConfig
from services.payments.main import definition as payments_definition
from services.payments.store import read_models
from services.portal.sessions import cookie_name, open_session
from shared.clock import Clock
from shared.service import ServiceRuntime
from tests.integration.support.catalogue import course_body, provider_body
from tests.integration.support.payments import World
from tests.support import eventually, free_port, running_app, settings_for

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EXPIRES = datetime.now(UTC).replace(microsecond=0) + timedelta(days=200)


@dataclass
class Course:
    course_id: str
    session_id: str
    title: str


class Portal(World):
    """The World of the payments tests, with the catalogue and the portal beside it."""

    provider_id: str = ""

    @property
    def portal(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtimes["portal"]
        return runtime

    async def sign_in(self, account_id: str) -> dict[str, str]:
        """A session for the account, as the sign-in opens one: the cookie to send."""
        session_id = await open_session(self.portal, uuid.UUID(account_id), datetime.now(UTC))
        return {cookie_name(self.settings): session_id}

    async def learner_with_credit(self) -> str:
        """An account with two lots: 2,000.00 from the state without expiry, 500.00 from
        a region that expires in 200 days."""
        account = await self.account(credit=200_000)
        region = {"funder_id": "region-bretagne", "expires_at": EXPIRES.isoformat()}
        await self.grant(account, 50_000, **region)
        return account

    async def accredited_provider(self) -> str:
        r = await self.c.post("/v1/providers", json=provider_body(), headers=self.agency)
        assert r.status_code == 201, r.text
        provider_id: str = r.json()["provider_id"]
        r = await self.c.post(
            f"/v1/providers/{provider_id}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=self.agency,
        )
        assert r.status_code == 200, r.text
        self.provider_id = provider_id
        return provider_id

    async def listed_course(self, title: str, price: int = 60_000, starts_in: int = 30) -> Course:
        """An approved course of the provider with one ten-day session ``starts_in`` days
        from now, known to payments when this returns."""
        provider = self.provider(self.provider_id)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=starts_in)
        session = {
            "session_id": str(uuid.uuid4()),
            "start": start.isoformat(),
            "end": (start + timedelta(days=10)).isoformat(),
            "seats": 12,
        }
        body = course_body(title=title, price=price, sessions=[session])
        r = await self.c.post("/v1/courses", json=body, headers=provider)
        assert r.status_code == 201, r.text
        course_id = r.json()["course_id"]
        r = await self.c.post(f"/v1/courses/{course_id}/submit", headers=provider)
        assert r.status_code == 200, r.text
        r = await self.c.post(
            f"/v1/courses/{course_id}/approve",
            json={"reason_code": "meets_criteria"},
            headers=self.agency,
        )
        assert r.status_code == 200, r.text

        async def known() -> Any:
            async with self.rt.sessions() as session:
                return await read_models.course(session, uuid.UUID(course_id))

        await eventually(known, lambda c: c is not None and c.status == "approved")
        return Course(course_id, body["sessions"][0]["session_id"], title)

    async def proposal(self, account: str, course: Course) -> str:
        r = await self.propose(self.provider_id, account, (course.course_id, course.session_id))
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "awaiting_learner_confirmation", r.text
        enrolment_id: str = r.json()["enrolment_id"]
        return enrolment_id

    async def credential(self, account: str, course: Course) -> tuple[str, str]:
        """The learner completes the course: the provider's certified completion claim is
        captured and the catalogue issues a credential. Answers the claim (awaiting the
        learner's word) and the credential."""
        e = await self.enrolled(self.provider_id, account, (course.course_id, course.session_id))
        assert e["status"] == "confirmed", e
        self.session_over(e)
        r = await self.claim(self.provider_id, e["enrolment_id"], certified=True, grade="pass")
        assert r.status_code == 202 and r.json()["status"] == "approved", r.text
        claim_id: str = r.json()["claim_id"]
        await self.captured(claim_id)

        async def issued() -> Any:
            async with self.app.state.runtimes["catalogue"].sessions() as session:
                return await session.scalar(
                    text("SELECT credential_id FROM catalogue.credentials WHERE enrolment_id = :e"),
                    {"e": uuid.UUID(e["enrolment_id"])},
                )

        return claim_id, str(await eventually(issued))


def definitions(clock: Clock) -> list[Any]:
    """Everything ``ila run`` serves, payments on ``clock``."""
    return [
        payments_definition(PaymentsConfig(), clock) if d.name == "payments" else d
        for d in everything()
    ]


@asynccontextmanager
async def portal(db_url: str, **overrides: Any) -> AsyncIterator[Portal]:
    """The all-in-one app (``overrides``: settings, e.g. ``oidc_issuer``)."""
    settings = settings_for(db_url, **overrides)
    clock = Clock()
    async with running_app(definitions(clock), settings, run_jobs=False) as (app, client):
        yield Portal(app, client, settings, clock)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The running app, also on a local port for a browser (its lifespan is the test's):
    uvicorn in the test's own event loop, so the test's set-up through the APIs and the
    browser's requests share one app."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the app did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def page(app: FastAPI, cookies: dict[str, str], path: str, **kwargs: Any) -> httpx.Response:
    """A GET as a browser sends it (with the session cookie, without following redirects)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ila.test", cookies=cookies
    ) as browser:
        return await browser.get(path, **kwargs)
