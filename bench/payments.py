"""The payments benchmark, four service processes over the real Kafka broker.

1. Enrolment → confirmed latency: enrolments proposed beforehand, then learners confirm at a
   steady rate (100/s by default, open loop); the latency of each is the payments service's
   own ``decided_at - confirmed_at`` (the saga: EnrolmentRequested → Kafka → ledger reserves
   → CreditsReserved → Kafka → payments confirms), reported as p50/p95/p99.
2. Claims → captured throughput: completion claims posted as fast as the clients go; the
   throughput is claims divided by the time from the first post to the last capture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ila.kafka import start_broker, stop_broker
from ila.postgres import embedded_postgres_url
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


async def setup(
    c: httpx.AsyncClient,
    urls: dict[str, str],
    settings: Settings,
    n_accounts: int,
    starts_in: float = 5.0,
    lasts: float = 1.0,
) -> World:
    """Accounts with plenty of credit, an accredited provider and an approved course whose
    session starts in ``starts_in`` seconds and lasts ``lasts`` seconds, known to payments."""
    from tests.integration.support.accounts import BODY
    from tests.integration.support.catalogue import course_body, provider_body

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
    r = await c.post(f"{cat}/v1/providers", json=provider_body(), headers=agency)
    provider_id = r.json()["provider_id"]
    await c.post(
        f"{cat}/v1/providers/{provider_id}/accredit",
        json={"reason_code": "qa_audit_passed"},
        headers=agency,
    )
    provider = _h(mint_token(settings, role="provider", sub="p", provider_id=provider_id))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=starts_in)
    course = course_body(price=40_000)
    end = start + timedelta(seconds=lasts)
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
    proposal = {"course_id": course_id, "session_id": course["sessions"][0]["session_id"]}
    first = {**proposal, "account_id": accounts[0]}
    await _until(
        lambda: c.post(f"{pay}/v1/enrolments", json=first, headers=provider),
        lambda r: r.status_code == 202,
    )
    return World(accounts, provider, proposal, start, end)


async def run(rate: float = 100.0, seconds: float = 10.0) -> dict[str, Any]:
    from tests.e2e.support import Cluster

    root = Path(tempfile.mkdtemp(prefix="ila-bench-pay-"))
    broker = start_broker(root / "kafka")
    url = embedded_postgres_url(root)
    cluster = Cluster(url, broker.bootstrap, root)
    cluster.env["ILA_PAYMENTS_VELOCITY_PER_HOUR"] = "10000000"  # a load test, not fraud
    cluster.env["ILA_LOG_LEVEL"] = "ERROR"
    total = int(rate * seconds)
    settings = Settings()
    agency = _h(mint_token(settings, role="agency", sub="b", agency_id="pes-fr"))
    acc, led, cat, pay = (cluster.url(s) for s in SERVICES)
    try:
        cluster.start()
        await cluster.ready()
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            print("setting up accounts, credit, provider and course ...", flush=True)
            world = await setup(
                c,
                {"accounts": acc, "ledger": led, "catalogue": cat, "payments": pay},
                settings,
                ACCOUNTS,
            )
            accounts, provider, proposal, end = (
                world.accounts,
                world.provider,
                world.proposal,
                world.end,
            )
            print(f"proposing {total} enrolments ...", flush=True)
            sem = asyncio.Semaphore(16)

            async def propose(i: int) -> tuple[str, str]:
                account = accounts[i % len(accounts)]
                async with sem:
                    r = await c.post(
                        f"{pay}/v1/enrolments",
                        headers=provider,
                        json={**proposal, "account_id": account},
                    )
                assert r.status_code == 202, r.text
                return account, r.json()["enrolment_id"]

            enrolments = await asyncio.gather(*(propose(i) for i in range(total)))

            print(f"confirming at {rate:.0f}/s for {seconds:.0f}s ...", flush=True)
            t0 = time.perf_counter()

            async def confirm(i: int, account: str, eid: str) -> None:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                learner = _h(mint_token(settings, role="learner", sub=account))
                r = await c.post(f"{pay}/v1/enrolments/{eid}/confirm", json={}, headers=learner)
                assert r.status_code == 202, r.text

            await asyncio.gather(*(confirm(i, a, e) for i, (a, e) in enumerate(enrolments)))
            offered = total / (time.perf_counter() - t0)
            ids = {e for _, e in enrolments}

            async def decided() -> list[dict[str, Any]]:
                items = await _all(c, f"{pay}/v1/enrolments", agency)
                return [e for e in items if e["enrolment_id"] in ids and e["decided_at"]]

            done = await _until(decided, lambda d: len(d) == total, seconds=300)
            latencies = [
                (
                    datetime.fromisoformat(e["decided_at"])
                    - datetime.fromisoformat(e["confirmed_at"])
                ).total_seconds()
                * 1000
                for e in done
            ]
            confirmed = sum(1 for e in done if e["status"] == "confirmed")

            print(f"claiming {confirmed} completions ...", flush=True)
            # a completion is claimed once the session is over
            await _until(lambda: asyncio.sleep(0, datetime.now(UTC)), lambda now: now > end)
            today = str(world.start.date())
            t1 = time.perf_counter()

            async def claim(eid: str) -> None:
                async with sem:
                    r = await c.post(
                        f"{pay}/v1/claims",
                        headers={**provider, "Idempotency-Key": str(uuid.uuid4())},
                        json={
                            "enrolment_id": eid,
                            "milestone": "completion",
                            "evidence": {
                                "started_on": today,
                                "completed_on": today,
                                "completion_rate": 100,
                            },
                        },
                    )
                assert r.status_code == 202, r.text

            ok_ids = [e["enrolment_id"] for e in done if e["status"] == "confirmed"]
            await asyncio.gather(*(claim(e) for e in ok_ids))

            async def captured() -> int:
                items = await _all(c, f"{pay}/v1/claims", agency)
                return sum(1 for x in items if x["status"] == "captured")

            await _until(captured, lambda n: n >= len(ok_ids), seconds=300)
            claims_per_s = len(ok_ids) / (time.perf_counter() - t1)
    finally:
        cluster.stop()
        stop_broker(broker)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "enrolments": total,
        "confirm_rate_offered_per_s": round(offered, 1),
        "confirmed": confirmed,
        "latency_ms": {
            "p50": round(_percentile(latencies, 50), 1),
            "p95": round(_percentile(latencies, 95), 1),
            "p99": round(_percentile(latencies, 99), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "claims_captured_per_s": round(claims_per_s, 1),
        "cpus": os.cpu_count(),
    }


def print_table(r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    print(
        f"\nenrolment → confirmed over Kafka at {r['confirm_rate_offered_per_s']}/s "
        f"({r['enrolments']} enrolments, {r['confirmed']} confirmed)"
    )
    print(f"  p50 {lat['p50']} ms   p95 {lat['p95']} ms   p99 {lat['p99']} ms")
    print(f"claims → captured: {r['claims_captured_per_s']} claims/s")
