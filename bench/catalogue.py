"""The public registry's search benchmark: 10k approved courses loaded, then the p50/p95
latency of typical queries through the HTTP API (``GET /v1/public/courses``), one client
at a time, against the all-in-one server in its own process."""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.ledger import all_in_one
from ila.postgres import embedded_postgres_url
from shared.db import make_engine, make_sessionmaker, migrate, transaction
from shared.outbox import EventContext, Outbox

REPO = Path(__file__).resolve().parent.parent
TOPICS = [
    ("welding", "Weld steel plates safely", "0715"),
    ("python programming", "Write and test Python programs", "0613"),
    ("elderly care", "Assist older people in daily life", "0922"),
    ("accounting", "Keep double-entry books for a small firm", "0411"),
    ("solar installation", "Install and maintain photovoltaic panels", "0713"),
    ("forklift driving", "Drive a forklift safely in a warehouse", "1041"),
    ("web design", "Design accessible web pages", "0612"),
    ("nursing assistance", "Support nurses on a hospital ward", "0913"),
    ("cooking", "Prepare meals in a professional kitchen", "1013"),
    ("french language", "Hold a conversation in French at B1 level", "0231"),
]
LEVELS = ["Introduction to", "Advanced", "Practical", "Certified", "Intensive", "Evening course in"]
REGIONS = ["Bretagne", "Occitanie", "Île-de-France", "Normandie", "Grand Est", "Bavaria"]
MODES = ["in_person", "online", "blended"]
QUERIES: dict[str, dict[str, Any]] = {
    "full text": {"q": "welding"},
    "full text, two words": {"q": "python programs"},
    "full text + EQF + region": {"q": "care", "eqf_level": 4, "region": "Bretagne"},
    "facets only": {"mode": "online", "max_price": 150_000},
    "ISCED prefix": {"isced": "07"},
    "no filter, page 1": {},
}


async def load(url: str, n: int) -> None:
    from services.catalogue.commands import Accredit, CourseStep, CreateCourse, RegisterProvider
    from services.catalogue.domain.credentials.signing import derive_issuer_key
    from services.catalogue.handlers import CatalogueConfig, Context, courses, providers
    from services.catalogue.store import courses as course_store
    from services.catalogue.store import providers as provider_store
    from tests.integration.support.catalogue import course_body, provider_body

    engine = make_engine(url, pool_size=4)
    await migrate(engine, "catalogue")
    sessions = make_sessionmaker(engine)
    outbox = Outbox("catalogue")
    ctx = EventContext.new("bench")
    rng = random.Random(7)
    now = datetime.now(UTC)
    config = CatalogueConfig(currency="EUR", issuer_key=derive_issuer_key("bench"))
    provider_ids = []
    async with transaction(sessions) as s:
        c = Context(s, outbox, config, now, ctx)
        for _provider in range(20):
            registration = RegisterProvider.model_validate_json(json.dumps(provider_body()))
            reg = await providers.register(registration, "pes-fr", c)
            provider = await provider_store.get(s, reg.provider_id)
            assert provider is not None
            await providers.accredit(provider, Accredit(reason_code="qa_audit_passed"), c)
            provider_ids.append(reg.provider_id)
    for first in range(0, n, 500):
        async with transaction(sessions) as s:
            as_provider = Context(s, outbox, config, now, EventContext.new("provider:bench"))
            as_agency = Context(s, outbox, config, now, EventContext.new("agency:bench"))
            for i in range(first, min(n, first + 500)):
                word, outcome, isced = TOPICS[i % len(TOPICS)]
                body = course_body(
                    title=f"{rng.choice(LEVELS)} {word} {i}",
                    description=f"A hands-on course in {word} with a certified trainer.",
                    learning_outcomes=[outcome, f"Apply {word} at work"],
                    isced_field=isced,
                    eqf_level=rng.randint(2, 6),
                    region=rng.choice(REGIONS),
                    mode=rng.choice(MODES),
                    price=rng.randrange(20_000, 300_000, 500),
                )
                draft = CreateCourse.model_validate_json(json.dumps(body))
                provider_id = provider_ids[i % len(provider_ids)]
                course_id = await courses.create(provider_id, draft, as_provider)
                for action in ("submit", "approve"):
                    row = await course_store.get(s, course_id, lock=True)
                    assert row is not None
                    code = "meets_criteria" if action == "approve" else None
                    step = CourseStep(action=action, reason_code=code)
                    await courses.act(row, step, as_agency)
    await engine.dispose()


async def measure(base: str, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    everything: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        for name, params in QUERIES.items():
            await c.get("/v1/public/courses", params=params)  # warm the plan cache
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                r = await c.get("/v1/public/courses", params=params)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            total = r.json().get("total")
            results[name] = {
                "params": params,
                "matches": total,
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
            }
            everything += times
    results["all queries"] = {
        "p50_ms": round(statistics.median(everything), 2),
        "p95_ms": round(sorted(everything)[int(0.95 * (len(everything) - 1))], 2),
    }
    return results


async def run(courses: int = 10_000, rounds: int = 100) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ila-bench-cat-"))
    url = embedded_postgres_url(root)
    print(f"loading {courses} approved courses ...", flush=True)
    t = time.perf_counter()
    await load(url, courses)
    loaded = time.perf_counter() - t
    try:
        async with all_in_one(url) as (base, _pid):
            print("querying ...", flush=True)
            results = await measure(base, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"courses": courses, "load_seconds": round(loaded, 1), "queries": results}


def print_table(r: dict[str, Any]) -> None:
    print(f"\nregistry search over {r['courses']} courses (loaded in {r['load_seconds']}s)")
    print(f"{'query':<28}{'matches':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for name, q in r["queries"].items():
        print(f"{name:<28}{q.get('matches') or '':>9}{q['p50_ms']:>9}{q['p95_ms']:>9}")
