"""The chaos run: the four services as processes on a three-broker cluster, under a mixed
load of open, grant, enrol, confirm, claim and payout-run operations, while one broker is
killed and restarted, PostgreSQL is stopped in ``immediate`` mode and restarted, and each
service is SIGKILLed once and restarted.

Afterwards: no acknowledged operation is lost, none is applied twice, every balance equals
the replay of the ledger topic, the SEPA files add up to what the ledger captured, every
consumer runs, and no event went to a dead-letter topic. The figures are printed.

``ILA_CHAOS_OPS`` sets the number of operations (600 in ``make test``, about three minutes
on a small machine; ``make chaos`` runs 10,000).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ila.kafka_cluster import KafkaCluster, kill_node, restart_node
from services.ledger.audit import wallet_view
from services.ledger.audit.replay import replay_topic
from shared.settings import SERVICES
from tests.chaos.support import Caller, ChaosPostgres, chaos_cluster, sepa_total
from tests.integration.support.accounts import BODY
from tests.integration.support.catalogue import course_body, provider_body
from tests.support import bearer, settings_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.chaos,
]

OPS = int(os.environ.get("ILA_CHAOS_OPS", "600"))
WORKERS = int(os.environ.get("ILA_CHAOS_WORKERS", "24"))
PROVIDERS = 3
GRANT = 50_000
PRICE = 40_000
OPS_PER_JOURNEY = 5  # open, grant, enrol, confirm, claim


class Run:
    def __init__(self, cluster: Any, settings: Any) -> None:
        self.cluster = cluster
        self.settings = settings
        self.agency = bearer(settings, "agency", agency_id="pes-fr")
        self.finance = bearer(settings, "finance")
        self.auditor = bearer(settings, "auditor")
        self.acc, self.led, self.cat, self.pay = (cluster.url(s) for s in SERVICES)
        self.ops: Counter[str] = Counter()
        self.journeys: list[dict[str, str]] = []
        self.providers: list[tuple[str, dict[str, str], str, str]] = []
        self.faults: list[str] = []
        self.started = time.monotonic()
        self.progressed = asyncio.Event()

    def count(self, what: str) -> None:
        self.ops[what] += 1
        self.progressed.set()

    @property
    def done(self) -> int:
        return sum(self.ops.values())

    def mark(self, what: str) -> None:
        self.faults.append(
            f"{time.monotonic() - self.started:6.1f}s  {what} (after {self.done} ops)"
        )


async def set_up_providers(run: Run, caller: Caller) -> None:
    """Providers registered and accredited, each with one approved course whose session is
    over by the time the load starts (claims of completion are due at once)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    end = start + timedelta(seconds=4)
    for _ in range(PROVIDERS):
        r = await caller.send(
            "setup", "POST", f"{run.cat}/v1/providers", headers=run.agency, json=provider_body()
        )
        provider_id = r.json()["provider_id"]
        await caller.send(
            "setup",
            "POST",
            f"{run.cat}/v1/providers/{provider_id}/accredit",
            headers=run.agency,
            json={"reason_code": "qa_audit_passed"},
        )
        token = bearer(run.settings, "provider", provider_id=provider_id)
        course = course_body(price=PRICE)
        session = course["sessions"][0]
        session.update(start=start.isoformat(), end=end.isoformat(), seats=100_000)
        r = await caller.send("setup", "POST", f"{run.cat}/v1/courses", headers=token, json=course)
        course_id = r.json()["course_id"]
        await caller.send(
            "setup", "POST", f"{run.cat}/v1/courses/{course_id}/submit", headers=token
        )
        await caller.send(
            "setup",
            "POST",
            f"{run.cat}/v1/courses/{course_id}/approve",
            headers=run.agency,
            json={"reason_code": "meets_criteria"},
        )
        run.providers.append((provider_id, token, course_id, session["session_id"]))
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.5)


async def journey(run: Run, caller: Caller) -> None:
    """One learner: open, grant, enrol, confirm, claim, each retried until answered."""
    body = {**BODY, "national_id": "X" + uuid.uuid4().hex[:14], "need_flags": []}
    r = await caller.send("open", "POST", f"{run.acc}/v1/accounts", headers=run.agency, json=body)
    account = r.json()["account_id"]
    run.count("open")
    learner = bearer(run.settings, "learner", sub=account)
    await caller.send(
        "grant",
        "POST",
        f"{run.led}/v1/ledger/grants",
        headers=run.agency,
        json={
            "account_id": account,
            "amount": GRANT,
            "funder_id": "state",
            "reason_code": "top_up",
        },
        not_yet=(404,),
    )
    run.count("grant")
    provider_id, provider, course_id, session_id = random.choice(run.providers)
    r = await caller.send(
        "enrol",
        "POST",
        f"{run.pay}/v1/enrolments",
        headers=provider,
        json={"account_id": account, "course_id": course_id, "session_id": session_id},
        not_yet=(404,),
    )
    enrolment = r.json()["enrolment_id"]
    run.count("enrol")
    await caller.send(
        "confirm",
        "POST",
        f"{run.pay}/v1/enrolments/{enrolment}/confirm",
        headers=learner,
        json={},
    )
    run.count("confirm")
    e = await caller.poll(
        f"{run.pay}/v1/enrolments/{enrolment}",
        learner,
        lambda e: e["status"] in ("confirmed", "rejected"),
    )
    assert e["status"] == "confirmed", e
    covered = int(e["covered"])
    today = datetime.now(UTC).date().isoformat()
    r = await caller.send(
        "claim",
        "POST",
        f"{run.pay}/v1/claims",
        headers=provider,
        json={
            "enrolment_id": enrolment,
            "milestone": "completion",
            "evidence": {
                "started_on": today,
                "completed_on": today,
                "completion_rate": 90,
                "certified": True,
                "grade": "pass",
            },
        },
        not_yet_codes=("reservation_in_progress",),
    )
    claim = r.json()["claim_id"]
    run.count("claim")
    run.journeys.append(
        {
            "account": account,
            "enrolment": enrolment,
            "claim": claim,
            "provider": provider_id,
            "covered": str(covered),
        }
    )


async def payout_run(run: Run, caller: Caller) -> int:
    """A payout run proposed by the agency and released by finance; the payouts it made."""
    r = await caller.send(
        "payout run",
        "POST",
        f"{run.pay}/v1/payouts/runs",
        headers=run.agency,
        json={},
        ok=(202, 409),
    )
    run.count("payout run")
    if r.status_code == 409:  # nothing_to_pay
        return 0
    location = r.headers["location"]
    if location.startswith("/v1/payments/approvals/"):
        await caller.send(
            "approve", "POST", f"{run.pay}{location}/approve", headers=run.finance, ok=(200, 409)
        )
        decided = await caller.poll(
            f"{run.pay}{location}", run.finance, lambda a: a["status"] != "pending"
        )
        assert decided["status"] == "approved", decided
    return 1


async def faults(run: Run, kafka: KafkaCluster, pg: ChaosPostgres) -> None:
    async def at(fraction: float) -> None:
        while run.done < fraction * OPS:
            run.progressed.clear()
            await run.progressed.wait()

    await at(0.10)
    run.mark("broker 2 SIGKILLed")
    await asyncio.to_thread(kill_node, kafka, 2)
    await at(0.22)
    await asyncio.to_thread(restart_node, kafka, 2)
    run.mark("broker 2 restarted")
    await at(0.32)
    run.mark("PostgreSQL stopped (immediate)")
    await asyncio.to_thread(pg.crash)
    await asyncio.sleep(2)
    await asyncio.to_thread(pg.start)
    run.mark("PostgreSQL restarted")
    for fraction, name in zip((0.45, 0.55, 0.65, 0.75), SERVICES, strict=True):
        await at(fraction)
        run.cluster.kill(name)
        run.mark(f"{name} SIGKILLed")
        run.cluster.start(name)
        await run.cluster.ready(name)
        run.mark(f"{name} ready again")


async def load(run: Run, caller: Caller) -> None:
    journeys = OPS // OPS_PER_JOURNEY
    started = 0
    payout_every = max(1, OPS // 8)
    next_payout = payout_every

    async def worker() -> None:
        nonlocal started
        while started < journeys:
            started += 1
            await journey(run, caller)

    async def payouts() -> None:
        nonlocal next_payout
        while started < journeys:
            if run.done >= next_payout:
                next_payout += payout_every
                await payout_run(run, caller)
            await asyncio.sleep(0.2)

    await asyncio.gather(*(worker() for _ in range(WORKERS)), payouts())


async def dead_letters(bootstrap: str, prefix: str) -> dict[str, int]:
    """Messages on the run's dead-letter topics (``<prefix><group>.dlt``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [
            t for t in await admin.list_topics() if t.startswith(prefix) and t.endswith(".dlt")
        ]
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(str(t["topic"]), int(p["partition"]))
        for t in described
        for p in t["partitions"]
    ]
    counts: dict[str, int] = dict.fromkeys(names, 0)
    if partitions:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=str(uuid.uuid4()))
        await consumer.start()
        try:
            for tp, end in (await consumer.end_offsets(partitions)).items():
                counts[tp.topic] += end
        finally:
            await consumer.stop()
    return counts


async def test_chaos_loses_nothing_and_applies_nothing_twice(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    pg = await asyncio.to_thread(ChaosPostgres)
    cluster = chaos_cluster(
        pg.url, kafka_cluster.bootstrap, tmp_path, kafka_cluster.replication_factor
    )
    settings = settings_for(pg.url)
    run = Run(cluster, settings)
    engine = create_async_engine(pg.url, pool_pre_ping=True)
    try:
        cluster.start()
        await cluster.ready()
        limits = httpx.Limits(max_connections=WORKERS * 2)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:
            caller = Caller(client)
            await set_up_providers(run, caller)
            run.started = time.monotonic()
            await asyncio.gather(load(run, caller), faults(run, kafka_cluster, pg))
            # every claim captured (or not: then it is counted as lost below)
            for j in run.journeys:
                await caller.poll(
                    f"{run.pay}/v1/claims/{j['claim']}",
                    run.agency,
                    lambda c: c["status"] in ("captured", "rejected", "in_payout", "paid"),
                )
            # the last runs pay whatever is still captured (once its attestation window
            # lapsed, which the payments sweep records within a second)
            for _ in range(10):
                async with engine.connect() as conn:
                    unpaid = await conn.scalar(
                        text("SELECT count(*) FROM payments.claims WHERE status = 'captured'")
                    )
                if not unpaid:
                    break
                await asyncio.sleep(1.5)
                await payout_run(run, caller)
            load_seconds = time.monotonic() - run.started
            await cluster.ready()
            ready = {
                name: (await client.get(f"{cluster.url(name)}/readyz")).status_code
                for name in SERVICES
            }
            sepa = 0
            async with engine.connect() as conn:
                payouts = (
                    await conn.execute(
                        text(
                            "SELECT payout_id, amount FROM payments.payouts "
                            "WHERE status IN ('sent', 'settled')"
                        )
                    )
                ).all()
            for payout_id, _ in payouts:
                r = await client.get(f"{run.pay}/v1/payouts/{payout_id}/sepa", headers=run.finance)
                assert r.status_code == 200, r.text
                sepa += sepa_total(r.text)
            report = (
                await client.post(f"{run.led}/v1/ledger/audit/verify", headers=run.auditor)
            ).json()
    finally:
        cluster.stop()

    accounts = [uuid.UUID(j["account"]) for j in run.journeys]
    async with engine.connect() as conn:
        opened = await conn.scalar(
            text("SELECT count(*) FROM accounts.accounts WHERE account_id = ANY(:a)"),
            {"a": accounts},
        )
        wallets = {
            r.account_id: r._mapping
            for r in await conn.execute(
                text("SELECT * FROM ledger.wallets WHERE account_id = ANY(:a)"), {"a": accounts}
            )
        }
        per_stream = Counter(
            (r.stream_id, r.type.split(".")[-2])
            for r in await conn.execute(
                text("SELECT stream_id, type FROM ledger.events WHERE stream_id = ANY(:a)"),
                {"a": accounts},
            )
        )
        enrolments = await conn.scalar(
            text(
                "SELECT count(*) FROM payments.enrolments WHERE account_id = ANY(:a) "
                "AND status IN ('confirmed', 'completed')"
            ),
            {"a": accounts},
        )
        claims = Counter(
            r.status
            for r in await conn.execute(
                text("SELECT status FROM payments.claims WHERE enrolment_id = ANY(:e)"),
                {"e": [uuid.UUID(j["enrolment"]) for j in run.journeys]},
            )
        )
        captured = int(
            await conn.scalar(text("SELECT coalesce(sum(spent_total), 0) FROM ledger.wallets")) or 0
        )
    await engine.dispose()
    replay = await replay_topic(kafka_cluster.bootstrap, topic=f"{cluster.prefix}ledger")
    dlq = await dead_letters(kafka_cluster.bootstrap, cluster.prefix)
    await asyncio.to_thread(pg.close)

    covered = {uuid.UUID(j["account"]): int(j["covered"]) for j in run.journeys}
    lost = len(accounts) - int(opened or 0)
    lost += sum(1 for a in accounts if a not in wallets)
    lost += sum(
        1
        for a in accounts
        if a in wallets
        and (wallets[a]["granted_total"] < GRANT or wallets[a]["spent_total"] < covered[a])
    )
    twice = sum(
        1
        for a in accounts
        if a in wallets
        and (wallets[a]["granted_total"] > GRANT or wallets[a]["spent_total"] > covered[a])
    )
    repeated = {k: n for k, n in per_stream.items() if n > 1}
    replay_mismatches = [
        a
        for a in accounts
        if a not in replay.states
        or wallet_view(replay.states[a])
        != {k: wallets[a][k] for k in wallet_view(replay.states[a])}
    ]
    figures = {
        "operations": dict(run.ops),
        "operations total": run.done,
        "retried sends": dict(caller.retries),
        "seconds under load": round(load_seconds, 1),
        "journeys": len(run.journeys),
        "lost": lost,
        "applied twice": twice + len(repeated),
        "confirmed enrolments": enrolments,
        "claims by status": dict(claims),
        "balances differing from the topic replay": len(replay_mismatches),
        "replay events / duplicates dropped / errors": (
            replay.events,
            replay.duplicates,
            len(replay.errors),
        ),
        "captured (ledger)": captured,
        "SEPA files total": sepa,
        "payouts sent": len(payouts),
        "readyz": ready,
        "dead letters": dlq,
        "verify": {k: report.get(k) for k in ("ok", "streams", "events", "checkpoints")},
        "faults": run.faults,
    }
    print("\nchaos figures:")
    for name, value in figures.items():
        if name == "faults":
            print("  faults:")
            for line in run.faults:
                print(f"    {line}")
        else:
            print(f"  {name}: {value}")

    assert run.done >= OPS
    assert lost == 0
    assert twice == 0 and not repeated, repeated
    assert enrolments == len(run.journeys)
    # the last run released every captured claim: each is in a sent payout
    assert claims == Counter({"in_payout": len(run.journeys)}), claims
    assert not replay_mismatches and not replay.errors
    assert sepa == captured == sum(covered.values())
    assert all(status == 200 for status in ready.values()), ready
    assert sum(dlq.values()) == 0, dlq
    assert report["ok"], report.get("mismatches")
    assert len(run.faults) == 12, run.faults
