"""The world the payments saga is measured in (``bench/kafka.py``): accounts with credit, an
accredited provider and an approved course, set up through the services' HTTP APIs."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.auth import mint_token
from shared.settings import SERVICES, Settings

ACCOUNTS = 100
PER_ACCOUNT = 10
IBAN = "DE89370400440532013000"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _until(probe: Any, check: Any, seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting; last value {value!r}"[:500])
        await asyncio.sleep(0.2)


async def _all(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if after:
            params["after"] = after
        page = (await c.get(url, params=params, headers=headers)).json()
        items += page["items"]
        after = page.get("next")
        if not after:
            return items


@dataclass
class World:
    accounts: list[str]
    provider: dict[str, str]
    proposal: dict[str, str]
    start: datetime
    end: datetime  # completions are claimed once the session is over
    # (provider's headers, proposal body without the account) of every course, first one first
    offers: list[tuple[dict[str, str], dict[str, str]]]


async def setup(
    c: httpx.AsyncClient,
    urls: dict[str, str],
    settings: Settings,
    n_accounts: int,
    starts_in: float = 5.0,
    lasts: float = 1.0,
    providers: int = 1,
) -> World:
    """Accounts with plenty of credit, ``providers`` accredited providers with an approved
    course each whose session starts in ``starts_in`` seconds and lasts ``lasts`` seconds,
    known to payments (proposals for one session, or of one provider, are decided one at a
    time: several spread a load as a whole country's courses would)."""
    from tests.integration.support.accounts import BODY

    acc, led, cat, pay = (urls[s] for s in SERVICES)
    agency = _h(mint_token(settings, role="agency", sub="b", agency_id="pes-fr"))
    accounts = []
    for _ in range(n_accounts):
        body = {
            **BODY,
            "national_id": "B" + uuid.uuid4().hex[:12],
            "employment_status": "employed",
            "need_flags": [],
        }
        r = await c.post(f"{acc}/v1/accounts", json=body, headers=agency)
        accounts.append(r.json()["account_id"])
    for a in accounts:
        await _until(
            lambda a=a: c.get(f"{led}/v1/ledger/accounts/{a}/balance", headers=agency),
            lambda r: r.status_code == 200,
        )
        r = await c.post(
            f"{led}/v1/ledger/grants",
            headers={**agency, "Idempotency-Key": str(uuid.uuid4())},
            json={
                "account_id": a,
                "amount": 100_000_000,
                "funder_id": "bench",
                "reason_code": "top_up",
            },
        )
        assert r.status_code == 201, r.text
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=starts_in)
    end = start + timedelta(seconds=lasts)
    offers = [await _offer(c, cat, settings, agency, start, end) for _ in range(providers)]
    for provider, proposal in offers:
        first = {**proposal, "account_id": accounts[0]}
        await _until(
            lambda first=first, provider=provider: c.post(
                f"{pay}/v1/enrolments", json=first, headers=provider
            ),
            lambda r: r.status_code == 202,
        )
    provider, proposal = offers[0]
    return World(accounts, provider, proposal, start, end, offers)


async def _offer(
    c: httpx.AsyncClient,
    cat: str,
    settings: Settings,
    agency: dict[str, str],
    start: datetime,
    end: datetime,
) -> tuple[dict[str, str], dict[str, str]]:
    """An accredited provider's approved course; its headers and proposal body."""
    from tests.integration.support.catalogue import course_body, provider_body

    r = await c.post(f"{cat}/v1/providers", json=provider_body(), headers=agency)
    provider_id = r.json()["provider_id"]
    await c.post(
        f"{cat}/v1/providers/{provider_id}/accredit",
        json={"reason_code": "qa_audit_passed"},
        headers=agency,
    )
    provider = _h(mint_token(settings, role="provider", sub="p", provider_id=provider_id))
    course = course_body(price=40_000)
    course["sessions"][0].update(start=start.isoformat(), seats=100_000, end=end.isoformat())
    course_id = (await c.post(f"{cat}/v1/courses", json=course, headers=provider)).json()[
        "course_id"
    ]
    await c.post(f"{cat}/v1/courses/{course_id}/submit", headers=provider)
    await c.post(
        f"{cat}/v1/courses/{course_id}/approve",
        json={"reason_code": "meets_criteria"},
        headers=agency,
    )
    return provider, {"course_id": course_id, "session_id": course["sessions"][0]["session_id"]}
