"""The system over Kafka, as in production: a real single-node broker (Maven jars, in a
temporary directory), an embedded PostgreSQL and the four services as separate processes
(``ila serve``), all stopped at the end, also on error.

0. A warm-up: enrolments confirmed at 100/s for ``WARMUP_SECONDS``, not measured. The
   services' and the broker's first requests are slower than a running system's (the JVM
   compiles the broker's hot paths as they come, each connection of a pool learns its
   types), and a deployed system has served many before its first measured minute.
1. Enrolment → confirmed, at 100/s then 500/s (``--seconds`` each): proposals made
   beforehand (a provider's proposal waits for the learner's consent), then learners confirm
   in an open loop, one arrival every 1/rate s whatever the answers. An enrolment's latency
   runs from its scheduled arrival to the timestamp of its ``payments.EnrolmentConfirmed``
   on the payments topic (stamped by the payments relay's producer as it publishes, i.e.
   after the confirmation committed), read by a consumer of the bench: the saga's three
   hops (EnrolmentRequested → ledger reserves → CreditsReserved → payments confirms)
   included. p50/p95/p99 and the achieved rate (confirmed / (last confirmation - start)).
2. Claims → captured: a completion claim for every confirmed enrolment, posted by 32 clients
   as fast as they are accepted; captured/s = claims / (first post → last
   ``ledger.ReservationCaptured`` on the ledger topic), and until payments shows every claim
   captured.
3. Enrolments after payments was down during an allocation (a deploy, a crash):
   ``DRAIN_WALLETS`` more wallets opened (and their openings delivered); payments stopped;
   a yearly allocation over every wallet, run by the bench into the ledger's database as
   the ledger's worker runs one, while the ledger's relay publishes the grants, until its
   outbox's backlog stops falling; payments started again. Once it is ready,
   ``DRAIN_ENROLMENTS`` learners confirm an enrolment, one every 0.5 s: enrolment →
   confirmed for each, and when every consumer group had applied every grant (no outbox
   backlog, no lag), from the restart. A topic is read in order: with
   ``ILA_RELAY_BULK_MAX_LAG=0`` every grant is on the ledger's topic when payments comes
   back, ahead of the learners' reservations.
4. Bulk delivery: the ledger stopped, a second allocation (another year) over the same
   wallets written into its outbox, the ledger started again. From its readiness until no
   outbox holds a row and no group lags (read every 0.25 s), the grants' rate through the
   whole pipeline: the relay, the broker, every consumer group's inbox and projections.
   Its target: bulk facts at >= 10k events/s end to end.

Beside each phase: the CPU seconds each process spent (services, broker, PostgreSQL, the
bench itself: they share the machine's cores). With ``--kafka-profile`` py-spy samples each
service during each phase (idle included, without pausing it) into
``bench-results/kafka-<service>-<phase>.folded`` (collapsed stacks for flamegraph.pl,
inferno or speedscope).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from bench.client import Answer, Pool
from bench.ledger import OUT, pgbench_tps
from bench.payments import World, _all, _h, _percentile, setup
from ila.kafka import jvm_options, start_broker, stop_broker
from ila.postgres import embedded_postgres_url
from shared.auth import mint_token
from shared.events.base import TYPE_PREFIX
from shared.settings import SERVICES, Settings

RATES = (100.0, 500.0)
WARMUP_SECONDS = 4.0
ACCOUNTS = 100
PROVIDERS = 20  # proposals for one session or of one provider are decided one at a time
CLAIM_CLIENTS = 32
TARGETS = {
    "p99_ms": {"100": 100.0, "500": 1000.0},
    "claims_captured_per_s": 500.0,
    "bulk_events_per_s": 10_000.0,
}
CONFIRMED = "payments.EnrolmentConfirmed"
REJECTED = "payments.EnrolmentRejected"
CAPTURED = "ledger.ReservationCaptured"
REQUESTED = "payments.EnrolmentRequested"
RESERVED = "ledger.CreditsReserved"
HOPS = ("to_requested", "to_reserved", "to_confirmed")
DRAIN_WALLETS = 100_000
DRAIN_ENROLMENTS = 10


class Watch:
    """Reads the services' topics from the start and notes, per event type, the enrolment
    each event names and the event's timestamp (s since the epoch)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        self.seen: dict[str, dict[str, float]] = defaultdict(dict)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for r in records:
                    envelope = orjson.loads(r.value)
                    eid = envelope["data"].get("enrolment_id")
                    if eid is not None:
                        kind = envelope["type"].removeprefix(TYPE_PREFIX).rsplit(".v", 1)[0]
                        self.seen[kind].setdefault(eid, r.timestamp / 1000)

    async def until(self, types: tuple[str, ...], ids: set[str], seconds: float) -> bool:
        """Wait until each of ``ids`` was seen in one of ``types``; False on timeout."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._task is not None and self._task.done():
                self._task.result()  # the watcher died: say why
            if all(any(i in self.seen[t] for t in types) for i in ids):
                return True
            await asyncio.sleep(0.1)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.consumer.stop()


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere or once gone);
    ``reaped``: with those of its children that ended and that it waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _postmaster(root: Path) -> int | None:
    for path in root.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().split()[0])
    return None


class Cpu:
    """CPU seconds per process group over a phase (what the cores were busy with)."""

    def __init__(self, groups: dict[str, int | None]) -> None:
        self.groups = groups

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.groups.items():
            if pid is None:
                continue
            if name == "postgres":  # the postmaster, its backends, and those that ended
                out[name] = _cpu_seconds(pid, reaped=True)
                out[name] += sum(_cpu_seconds(p) for p in _children(pid))
            else:
                out[name] = _cpu_seconds(pid)
        return out

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, Any]:
        """Each group's share of one core over ``wall`` seconds."""
        return {
            name: round((after[name] - before.get(name, 0.0)) / wall, 2)
            for name in after
            if wall > 0
        }


@contextlib.asynccontextmanager
async def profiled(pids: dict[str, int], phase: str, on: bool) -> AsyncIterator[None]:
    """py-spy on each service while the phase runs (``on``), non-blocking, idle included."""
    if not on:
        yield
        return
    OUT.mkdir(exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - samplers beside the phase, stopped after it
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "100",
                "--idle",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(OUT / f"kafka-{name}-{phase}.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _pending(c: httpx.AsyncClient, bases: list[str]) -> float:
    """Rows the outboxes hold unpublished plus the consumer groups' lag, every service."""
    pending = 0.0
    for base in bases:
        for line in (await c.get(f"{base}/metrics")).text.splitlines():
            if line.startswith(("ila_outbox_backlog{", "ila_consumer_lag{")):
                pending += float(line.rsplit(" ", 1)[1])
    return pending


async def quiet(
    c: httpx.AsyncClient, bases: list[str], seconds: float = 120.0, every: float = 0.3
) -> float | None:
    """Wait until no outbox holds unpublished rows and no consumer group lags, twice in a row,
    so one phase's events do not queue ahead of the next one's. When the first of the two
    readings was taken (``time.time()``); None when ``seconds`` ran out first (the phase
    then starts behind a backlog)."""
    deadline = time.monotonic() + seconds
    since: float | None = None
    while time.monotonic() < deadline:
        at = time.time()
        if await _pending(c, bases) == 0:
            if since is not None:
                return since
            since = at
        else:
            since = None
        await asyncio.sleep(every)
    return None


async def enrolments(
    c: httpx.AsyncClient,
    world: World,
    pays: list[str],
    learners: dict[str, dict[str, str]],
    watch: Watch,
    rate: float,
    seconds: float,
    bases: list[str],
    cpu: Cpu,
    profile: Any,
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """One open-loop phase at ``rate``; its figures and the enrolments confirmed (with the
    headers of the provider who proposed each). ``profile``: the context the confirmations
    run in (py-spy or nothing)."""
    total = int(rate * seconds)
    sem = asyncio.Semaphore(16)

    async def propose(i: int) -> tuple[str, str, dict[str, str]]:
        account = world.accounts[i % len(world.accounts)]
        provider, proposal = world.offers[i % len(world.offers)]
        async with sem:
            r = await c.post(
                f"{pays[i % len(pays)]}/v1/enrolments",
                headers=provider,
                json={**proposal, "account_id": account},
            )
        if r.status_code != 202:
            raise RuntimeError(f"proposal refused: {r.status_code} {r.text[:300]}")
        return account, r.json()["enrolment_id"], provider

    t = time.perf_counter()
    proposed = await asyncio.gather(*(propose(i) for i in range(total)))
    print(f"  {total} proposals in {time.perf_counter() - t:.1f}s", flush=True)
    calm = await quiet(c, bases) is not None

    answers: list[float] = []
    refused: list[str] = []

    async def answered(at: float, sent: asyncio.Future[Answer]) -> None:
        try:
            status = (await sent).status
        except Exception as exc:
            refused.append(type(exc).__name__)
            return
        answers.append(time.time() - at)
        if status != 202:
            refused.append(str(status))

    pools = [Pool(pay, 64) for pay in pays]  # the confirmations spread over the replicas
    scheduled: dict[str, float] = {}
    tasks = []
    before = cpu.sample()
    async with profile:
        start = time.time() + 0.2
        for i, (account, eid, _) in enumerate(proposed):
            at = start + i / rate
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            scheduled[eid] = at
            pool = pools[i % len(pools)]
            sent = pool.request("POST", f"/v1/enrolments/{eid}/confirm", learners[account], b"{}")
            tasks.append(asyncio.create_task(answered(at, sent)))
        offered = total / max(time.time() - start, 1e-9)
        await asyncio.wait(tasks, timeout=max(30.0, seconds * 3))
        complete = await watch.until((CONFIRMED, REJECTED), set(scheduled), max(30.0, seconds * 3))
    busy = Cpu.spent(before, cpu.sample(), time.time() - start)
    for task in tasks:  # requests still queued when the phase gave up waiting
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for pool in pools:
        await pool.close()
    done = watch.seen[CONFIRMED]
    ok = [e for e in scheduled if e in done]
    latencies = [(done[e] - scheduled[e]) * 1000 for e in ok]
    last = max((done[e] for e in ok), default=start)
    # where the time goes: confirm accepted -> EnrolmentRequested published -> the ledger's
    # CreditsReserved published -> EnrolmentConfirmed published
    marks = [scheduled, watch.seen[REQUESTED], watch.seen[RESERVED], done]
    hops: dict[str, Any] = {}
    for name, (a, b) in zip(HOPS, itertools.pairwise(marks), strict=True):
        spans = [(b[e] - a[e]) * 1000 for e in ok if e in a and e in b]
        hops[name] = {f"p{p}": round(_percentile(spans, p), 1) for p in (50, 99)} if spans else None
    result: dict[str, Any] = {
        "started_quiet": calm,
        "rate_offered_per_s": round(offered, 1),
        "enrolments": total,
        "confirmed": len(ok),
        "rejected": sum(1 for e in scheduled if e in watch.seen[REJECTED]),
        "undecided": 0 if complete else sum(1 for e in scheduled if e not in done),
        "refused_requests": len(refused),
        "confirmed_per_s": round(len(ok) / max(last - start, 1e-9), 1),
        "confirm_answered_ms": {
            f"p{p}": round(_percentile(answers, p) * 1000, 1) if answers else None for p in (50, 99)
        },
        "latency_ms": {
            f"p{p}": round(_percentile(latencies, p), 1) if latencies else None
            for p in (50, 95, 99)
        }
        | {"max": round(max(latencies), 1) if latencies else None},
        "hops_ms": hops,
        "cpu_cores": busy,
    }
    if refused:
        result["first_refusal"] = refused[0]
    owners = {eid: provider for _, eid, provider in proposed}
    return result, {e: owners[e] for e in ok}


async def claims(
    c: httpx.AsyncClient,
    world: World,
    pays: list[str],
    agency: dict[str, str],
    watch: Watch,
    owners: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """Completion claims for ``ids`` posted as fast as accepted; captured/s."""
    wait = (world.end - datetime.now(UTC)).total_seconds()
    if wait > 0:  # a completion is claimed once the session is over
        await asyncio.sleep(wait + 0.5)
    today = str(world.start.date())
    ids = list(owners)
    queue = list(ids)
    refused: list[str] = []

    # on the benches' own client, as the confirmations: httpx took a third of a core here
    pools = [Pool(pay, CLAIM_CLIENTS) for pay in pays]

    async def client(k: int) -> None:
        while queue:
            eid = queue.pop()
            body = {
                "enrolment_id": eid,
                "milestone": "completion",
                "evidence": {"started_on": today, "completed_on": today, "completion_rate": 100},
            }
            headers = {**owners[eid], "Idempotency-Key": str(uuid.uuid4())}
            pool = pools[k % len(pools)]
            status, content, _ = await pool.request(
                "POST", "/v1/claims", headers, orjson.dumps(body)
            )
            if status != 202:
                refused.append(f"{status} {content[:200]!r}")

    t0 = time.time()
    try:
        await asyncio.wait_for(asyncio.gather(*(client(k) for k in range(CLAIM_CLIENTS))), 300)
    finally:
        for pool in pools:
            await pool.close()
    posted = time.time() - t0
    complete = await watch.until((CAPTURED,), set(ids), 300)
    at_ledger = [watch.seen[CAPTURED][e] for e in ids if e in watch.seen[CAPTURED]]
    ledger_s = max(at_ledger, default=t0) - t0

    async def captured() -> int:
        items = await _all(c, f"{pays[0]}/v1/claims", agency)
        return sum(1 for x in items if x["status"] == "captured")

    n = await captured()
    for _ in range(120):  # two minutes at most; seldom: listing every claim costs payments
        if n >= len(ids):
            break
        await asyncio.sleep(1.0)
        n = await captured()
    payments_s = time.time() - t0
    result: dict[str, Any] = {
        "claims": len(ids),
        "refused_requests": len(refused),
        "accepted_per_s": round(len(ids) / posted, 1),
        "captured_at_ledger": len(at_ledger),
        "captured_per_s_at_ledger": round(len(at_ledger) / max(ledger_s, 1e-9), 1),
        "captured_in_payments": n,
        "captured_per_s_in_payments": round(n / payments_s, 1),
        "complete": complete and n == len(ids),
    }
    if refused:
        result["first_refusal"] = refused[0]
    return result


async def _ledger_backlog(sessions: Any) -> int:
    from sqlalchemy import text

    async with sessions() as s:
        query = "SELECT count(*) FROM ledger.outbox WHERE sent_at IS NULL AND parked_at IS NULL"
        return int(await s.scalar(text(query)) or 0)


async def after_allocation(
    c: httpx.AsyncClient,
    url: str,
    cluster: Any,
    world: World,
    learners: dict[str, dict[str, str]],
    watch: Watch,
    bases: list[str],
) -> dict[str, Any]:
    """Phase 3 (module docstring): enrolments confirmed while an allocation's backlog
    drains."""
    from bench.ledger import allocate, open_wallets
    from services.ledger.handlers import Ledger
    from shared.db import make_engine, make_sessionmaker
    from shared.outbox import Outbox

    pay = cluster.url("payments")
    proposed = []
    for k in range(DRAIN_ENROLMENTS):
        account = world.accounts[k % len(world.accounts)]
        provider, proposal = world.offers[k % len(world.offers)]
        r = await c.post(
            f"{pay}/v1/enrolments", headers=provider, json={**proposal, "account_id": account}
        )
        if r.status_code != 202:
            raise RuntimeError(f"proposal refused: {r.status_code} {r.text[:300]}")
        proposed.append((account, r.json()["enrolment_id"]))
    engine = make_engine(url, pool_size=4)
    try:
        sessions = make_sessionmaker(engine)
        outbox = Outbox("ledger", topic=f"{cluster.prefix}ledger")
        t = time.perf_counter()
        await open_wallets(sessions, Ledger(outbox), DRAIN_WALLETS)
        result: dict[str, Any] = {
            "wallets": DRAIN_WALLETS,
            "started_quiet": await quiet(c, bases, 600.0) is not None,
            "opened_and_delivered_s": round(time.perf_counter() - t, 1),
        }
        cluster.terminate("payments")
        t = time.perf_counter()
        seconds = await allocate(sessions, outbox)
        # the ledger's relay publishes the grants meanwhile, until it has none left or
        # holds the rest back: the outbox's backlog stops falling
        left = await _ledger_backlog(sessions)
        while True:
            await asyncio.sleep(1.0)
            now = await _ledger_backlog(sessions)
            if now >= left:
                break
            left = now
        result["payments_down_s"] = round(time.perf_counter() - t, 1)
        result["held_in_outbox"] = left
    finally:
        await engine.dispose()
    cluster.start("payments")
    await cluster.ready("payments")
    start = time.time()
    scheduled: dict[str, float] = {}
    pool = Pool(pay, 4)
    try:
        answers = []
        for account, eid in proposed:
            await asyncio.sleep(0.5)
            scheduled[eid] = time.time()
            answers.append(
                pool.request("POST", f"/v1/enrolments/{eid}/confirm", learners[account], b"{}")
            )
        statuses = [(await a).status for a in answers]
    finally:
        await pool.close()
    complete = await watch.until((CONFIRMED, REJECTED), set(scheduled), 600.0)
    drained = await quiet(c, bases, 1800.0)
    applied_after = (drained or time.time()) - start
    done = watch.seen[CONFIRMED]
    latencies = [(done[e] - at) * 1000 for e, at in scheduled.items() if e in done]
    return result | {
        "allocation_s": round(seconds, 1),
        "grants_per_s": round(DRAIN_WALLETS / seconds),
        "confirm_statuses": sorted(set(statuses)),
        "enrolments": len(scheduled),
        "confirmed": len(latencies),
        "undecided": 0 if complete else len(scheduled) - len(latencies),
        "latency_ms": {
            f"p{p}": round(_percentile(latencies, p), 1) if latencies else None for p in (50, 99)
        }
        | {"max": round(max(latencies), 1) if latencies else None},
        "every_event_applied_after_s": round(applied_after, 1) if drained is not None else None,
    }


async def bulk_delivery(
    c: httpx.AsyncClient,
    url: str,
    cluster: Any,
    bases: list[str],
    cpu: Cpu,
    pids: dict[str, int],
    profile: bool,
) -> dict[str, Any]:
    """Phase 4 (module docstring): a second allocation written while the ledger is down, so
    that every grant waits in its outbox; the ledger started again; from its readiness
    until no outbox holds a row and no group lags, the grants' rate through the whole
    pipeline (relay, broker, every consumer group's inbox and projection)."""
    from sqlalchemy import text

    from bench.ledger import allocate
    from shared.db import make_engine, make_sessionmaker
    from shared.outbox import Outbox

    engine = make_engine(url, pool_size=4)
    try:
        sessions = make_sessionmaker(engine)
        last = text("SELECT coalesce(max(id), 0) FROM ledger.outbox")
        async with sessions() as s:
            before = int(await s.scalar(last) or 0)
        cluster.terminate("ledger")
        seconds = await allocate(sessions, Outbox("ledger", topic=f"{cluster.prefix}ledger"), 2031)
        async with sessions() as s:
            events = int(await s.scalar(last) or 0) - before
    finally:
        await engine.dispose()
    cluster.start("ledger")
    await cluster.ready("ledger")
    for name, (proc, _) in cluster.procs.items():  # the ledger's, and payments' since phase 3
        pids[name] = cpu.groups[name] = proc.pid
    spent, start = cpu.sample(), time.time()
    async with profiled(pids, "bulk", profile):
        done = await quiet(c, bases, 1800.0, every=0.25)
    end = done or time.time()
    return {
        "events": events,
        "allocation_s": round(seconds, 1),
        "applied_after_s": round(end - start, 1) if done is not None else None,
        "events_per_s": round(events / (end - start)) if done is not None else None,
        "cpu_cores": Cpu.spent(spent, cpu.sample(), time.time() - start),
    }


async def run(seconds: float = 10.0, profile: bool = False, replicas: int = 1) -> dict[str, Any]:
    from tests.e2e.support import Cluster

    root = Path(tempfile.mkdtemp(prefix="ila-bench-kafka-"))
    broker = None
    cluster = None
    watch = None
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "seconds_per_rate": seconds,
        "warmup_seconds_at_100": WARMUP_SECONDS,
        "payments_replicas": replicas,
        "broker_jvm_options": jvm_options(),
        "targets": TARGETS,
        "rates": {},
    }
    try:
        broker = start_broker(root / "kafka")
        url = embedded_postgres_url(root)
        cluster = Cluster(url, broker.bootstrap, root)
        cluster.env["ILA_PAYMENTS_VELOCITY_PER_HOUR"] = "100000000"  # a load test, not fraud
        cluster.env["ILA_LOG_LEVEL"] = "ERROR"
        cluster.env.pop("ILA_RELAY_IDLE_INTERVAL", None)  # the production default
        settings = Settings()
        agency = _h(mint_token(settings, role="agency", sub="b", agency_id="pes-fr"))
        # payments is the one service near a full core: it runs as ``replicas`` processes
        # in one consumer group (the relay publishes from one of them, under its lock)
        extra = [f"payments-{k}" for k in range(2, replicas + 1)]
        cluster.start(*SERVICES, *extra)
        urls = {s: cluster.url(s) for s in SERVICES}
        pays = [urls["payments"], *(cluster.url(name) for name in extra)]
        await cluster.ready()
        pids = {name: proc.pid for name, (proc, _) in cluster.procs.items()}
        cpu = Cpu(
            {**pids, "kafka": broker.pid, "postgres": _postmaster(root), "bench": os.getpid()}
        )
        watch = Watch(broker.bootstrap, [f"{cluster.prefix}payments", f"{cluster.prefix}ledger"])
        await watch.start()
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            print("setting up accounts, credit, provider and course ...", flush=True)
            world = await setup(
                c, urls, settings, ACCOUNTS, starts_in=5.0, lasts=1.0, providers=PROVIDERS
            )
            learners = {a: _h(mint_token(settings, role="learner", sub=a)) for a in world.accounts}
            bases = [*urls.values(), *pays[1:]]
            confirmed: dict[str, dict[str, str]] = {}

            async def phase(
                rate: float, lasting: float, sampled: Any
            ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
                await quiet(c, bases)
                return await enrolments(
                    c, world, pays, learners, watch, rate, lasting, bases, cpu, sampled
                )

            print(f"warming up: enrolments at 100/s for {WARMUP_SECONDS:.0f}s ...", flush=True)
            warm, _ = await phase(100.0, WARMUP_SECONDS, contextlib.nullcontext())
            results["warmup"] = {k: warm[k] for k in ("confirmed", "latency_ms")}
            for rate in RATES:
                print(f"enrolments confirmed at {rate:.0f}/s for {seconds:.0f}s ...", flush=True)
                figures, ok = await phase(
                    rate, seconds, profiled(pids, f"enrol{rate:.0f}", profile)
                )
                results["rates"][f"{rate:.0f}"] = figures
                confirmed |= ok
                print(f"  {figures}", flush=True)
            print(f"claiming {len(confirmed)} completions ...", flush=True)
            calm = await quiet(c, bases) is not None
            before, t = cpu.sample(), time.time()
            async with profiled(pids, "claims", profile):
                results["claims"] = await claims(c, world, pays, agency, watch, confirmed)
            results["claims"]["cpu_cores"] = Cpu.spent(before, cpu.sample(), time.time() - t)
            results["claims"]["started_quiet"] = calm
            print(f"  {results['claims']}", flush=True)
            bound = cluster.env.get("ILA_RELAY_BULK_MAX_LAG", settings.relay_bulk_max_lag)
            print(
                f"enrolments while an allocation of {DRAIN_WALLETS} wallets drains "
                f"(ILA_RELAY_BULK_MAX_LAG={bound}) ...",
                flush=True,
            )
            drain = await after_allocation(c, url, cluster, world, learners, watch, bases)
            results["after_allocation"] = drain | {"relay_bulk_max_lag": int(bound)}
            print(f"  {results['after_allocation']}", flush=True)
            print("a second allocation held in the ledger's outbox, then delivered ...", flush=True)
            results["bulk"] = await bulk_delivery(c, url, cluster, bases, cpu, pids, profile)
            print(f"  {results['bulk']}", flush=True)
        with contextlib.suppress(Exception):
            results["reference_pgbench_insert_tps_8_clients"] = round(
                await asyncio.to_thread(pgbench_tps, url, 8, 3), 1
            )
    finally:
        if watch is not None:
            await watch.stop()
        if cluster is not None:
            cluster.stop()
        if broker is not None:
            stop_broker(broker)
        with contextlib.suppress(Exception):
            from embedded_postgres.postgres_server import get_server

            get_server(root / "postgres", cleanup_mode="stop").cleanup()
        shutil.rmtree(root, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "kafka.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _ok(value: float | None, target: float, below: bool = True) -> str:
    if value is None:
        return "-"
    return "yes" if (value < target if below else value >= target) else "NO"


def print_table(r: dict[str, Any]) -> None:
    n = r.get("payments_replicas", 1)
    print(f"\nover Kafka (`ila serve` per service, payments x{n}, one broker), {r['cpus']} CPUs")
    if "broker_jvm_options" in r:
        print(f"broker JVM: {' '.join(r['broker_jvm_options']) or 'the defaults'}")
    head = f"{'measure':<36}{'ours':>12}{'target':>12}{'met':>5}"
    print(head)
    print("-" * len(head))
    for rate, f in r["rates"].items():
        lat, target = f["latency_ms"], r["targets"]["p99_ms"][rate]
        print(f"enrolment → confirmed at {rate}/s")
        for p in ("p50", "p95", "p99"):
            shown = f"{lat[p]:,.0f} ms" if lat[p] is not None else "-"
            goal, met = (f"< {target:,.0f} ms", _ok(lat[p], target)) if p == "p99" else ("", "")
            print(f"{'  ' + p:<36}{shown:>12}{goal:>12}{met:>5}")
        achieved = f"{f['confirmed_per_s']}/s"
        print(f"{'  confirmed (offered ' + str(f['rate_offered_per_s']) + '/s)':<36}{achieved:>12}")
        if not f.get("started_quiet", True):
            print("  (started behind the previous phase's backlog)")
        lost = f["enrolments"] - f["confirmed"]
        if lost:
            print(f"  {lost} of {f['enrolments']} not confirmed ({f['rejected']} rejected)")
    cl, target = r["claims"], r["targets"]["claims_captured_per_s"]
    at_ledger = cl["captured_per_s_at_ledger"]
    met = _ok(at_ledger, target, below=False)
    print(
        f"{'claims → captured (ledger)':<36}{f'{at_ledger}/s':>12}{f'≥ {target:.0f}/s':>12}{met:>5}"
    )
    print(f"{'claims → captured (payments)':<36}{str(cl['captured_per_s_in_payments']) + '/s':>12}")
    print(f"{'claims accepted':<36}{str(cl['accepted_per_s']) + '/s':>12}")
    d = r.get("after_allocation")
    if d:
        print(
            f"payments back after an allocation of {d['wallets']:,} grants "
            f"({d['held_in_outbox']:,} held in the outbox; bulk rows held past "
            f"{d['relay_bulk_max_lag']:,} behind, 0: never):"
        )
        lat = d["latency_ms"]
        for p in ("p50", "max"):
            shown = f"{lat[p]:,.0f} ms" if lat[p] is not None else "-"
            print(f"{'  enrolment → confirmed, ' + p:<36}{shown:>12}")
        if d["confirmed"] < d["enrolments"]:
            print(f"  {d['enrolments'] - d['confirmed']} of {d['enrolments']} not confirmed")
        after = d["every_event_applied_after_s"]
        shown = f"{after} s" if after is not None else "not within 30 min"
        print(f"{'  every grant applied, from the restart':<36}{shown:>12}")
    b = r.get("bulk")
    if b:
        rate, target = b["events_per_s"], r["targets"]["bulk_events_per_s"]
        shown = f"{rate:,}/s" if rate is not None else "not within 30 min"
        met = _ok(rate, target, below=False)
        print(f"bulk: {b['events']:,} grants held in the ledger's outbox, the ledger restarted:")
        print(f"{'  applied by every group':<36}{shown:>12}{f'≥ {target:,.0f}/s':>12}{met:>5}")
    tps = r.get("reference_pgbench_insert_tps_8_clients")
    if tps:
        print(f"reference, pgbench single-row inserts at 8 clients: {tps:,.0f} tps")
    print(f"\nwritten to {OUT / 'kafka.json'}")
