"""Reads over HTTP (``--only reads``): learners reading their balance
(``GET /v1/ledger/accounts/{id}/balance``) from the all-in-one server, one caller at a time
(the latency a phone sees) and 32 at once, against PostgreSQL's own point read of a row by
its key (pgbench, the same callers) in the same run."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.client import Pool
from bench.ledger import OUT, all_in_one, open_wallets, pgbench, settled
from ila.postgres import embedded_postgres_url
from services.ledger.handlers import Ledger
from shared.auth import mint_token
from shared.db import make_engine, make_sessionmaker, migrate
from shared.outbox import Outbox
from shared.settings import Settings

ROWS = 100_000  # the reference table's rows


def point_reads_per_s(url: str, clients: int, seconds: float) -> float:
    """pgbench: a row read by its primary key, each caller waiting for its answer."""
    return pgbench(
        url,
        clients,
        seconds,
        setup="CREATE TABLE IF NOT EXISTS public.pgbench_reads (id int PRIMARY KEY, v int); "
        f"INSERT INTO public.pgbench_reads SELECT i, i FROM generate_series(1, {ROWS}) i "
        "ON CONFLICT DO NOTHING",
        script=f"\\set id random(1, {ROWS})\nSELECT v FROM public.pgbench_reads WHERE id = :id;\n",
        options=("-M", "prepared"),
    )


async def read_balances(
    base: str, accounts: list[uuid.UUID], clients: int, seconds: float
) -> dict[str, float]:
    """Each learner's balance read by ``clients`` callers, each waiting for its answer: the
    reads a second and the milliseconds of each read (median, 99th percentile)."""
    settings = Settings()
    tokens = [
        {"Authorization": "Bearer " + mint_token(settings, role="learner", sub=str(a))}
        for a in accounts
    ]
    pool = Pool(base, clients)
    took: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            n = i % len(accounts)
            t = time.perf_counter()
            answer = await pool.request(
                "GET", f"/v1/ledger/accounts/{accounts[n]}/balance", tokens[n]
            )
            took.append(time.perf_counter() - t)
            if answer.status != 200:
                raise RuntimeError(f"a balance answered {answer.status}: {answer.content!r}")
            i += clients

    started = time.perf_counter()
    try:
        await asyncio.gather(*(caller(k) for k in range(clients)))
    finally:
        await pool.close()
    elapsed = time.perf_counter() - started
    took.sort()
    return {
        "reads_per_s": round(len(took) / elapsed, 1),
        "p50_ms": round(statistics.median(took) * 1000, 3),
        "p99_ms": round(took[int(len(took) * 0.99)] * 1000, 3),
    }


async def run(seconds: float, workers: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ila-bench-"))
    url = embedded_postgres_url(root)
    engine = make_engine(url, pool_size=4)
    await migrate(engine, "ledger")
    accounts = await open_wallets(make_sessionmaker(engine), Ledger(Outbox("ledger")), 2000)
    await engine.dispose()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "server_processes": workers,
        "reads": [],
    }
    async with all_in_one(url, workers) as (base, _):
        await settled(base)  # the openings applied by every consumer
        await read_balances(base, accounts, 8, 3.0)  # warm-up
        for clients in (1, 32):
            print(f"balances read by {clients} callers ...", flush=True)
            ours = await read_balances(base, accounts, clients, seconds)
            results["reads"].append({"clients": clients, **ours})
    for row in results["reads"]:
        reference = point_reads_per_s(url, row["clients"], seconds)
        row["reference_pgbench_point_reads_per_s"] = round(reference, 1)
        row["ratio"] = round(row["reads_per_s"] / reference, 3)
    OUT.mkdir(exist_ok=True)
    path = OUT / "reads.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {path}")
    shutil.rmtree(root, ignore_errors=True)
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'measure':<30}{'ours':>12}{'reference':>12}{'ratio':>8}{'p50 ms':>8}{'p99 ms':>8}")
    for row in results["reads"]:
        print(
            f"{'GET balance/s @' + str(row['clients']):<30}{row['reads_per_s']:>12}"
            f"{row['reference_pgbench_point_reads_per_s']:>12}{row['ratio']:>8}"
            f"{row['p50_ms']:>8}{row['p99_ms']:>8}"
        )
