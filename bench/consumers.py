"""The consumers' benchmark: other services' events applied by the payments and catalogue
consumers (events/s), handed over as the relay and the bus hand them (``handle_batch``, one
fetched batch at a time, inbox rows included), on a fresh embedded PostgreSQL.

- the allocation's bulk facts: ``ledger.CreditsGranted`` into payments' lots, in fetched
  batches of 500 (the relay's batch);
- accounts opened: ``accounts.AccountOpened`` into payments' and the catalogue's read models;
- enrolments confirmed: ``payments.EnrolmentConfirmed`` into the catalogue's seats;
- one event per batch (an interactive grant, as the relay publishes it at low rates): the
  fixed cost of a batch (transaction, pool checkout, inbox).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ila.postgres import embedded_postgres_url
from ila.registry import definition
from shared.bus import Message, topic_for
from shared.db import make_engine, migrate
from shared.events import Envelope, Event
from shared.events.accounts import AccountOpened, NeedProfile
from shared.events.ledger import CreditsGranted
from shared.events.payments import EnrolmentConfirmed
from shared.service import standalone_runtime
from shared.settings import Settings

OUT = Path(__file__).resolve().parent.parent / "bench-results"
NOW = datetime(2031, 1, 1, tzinfo=UTC)


def granted() -> Event:
    return CreditsGranted(
        account_id=uuid.uuid4(),
        occurred_at=NOW,
        lot_id=uuid.uuid4(),
        amount=50_000,
        funder_id="state",
        reason_code="statutory",
        kind="statutory",
        year=2031,
        expires_at=NOW.replace(year=2034),
    )


def opened() -> Event:
    return AccountOpened(
        account_id=uuid.uuid4(),
        agency_id="pes-fr",
        profile=NeedProfile(qualification_level=3, employment_status="employed"),
        opened_at=NOW,
    )


def confirmed() -> Event:
    return EnrolmentConfirmed(
        enrolment_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        provider_id="bench",
        course_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        price=100_000,
        covered=100_000,
        co_payment=0,
        participation_fee=0,
    )


SCENARIOS: list[tuple[str, str, Callable[[], Event], int]] = [
    ("payments", "CreditsGranted, batches of 500", granted, 500),
    ("payments", "AccountOpened, batches of 500", opened, 500),
    ("catalogue", "AccountOpened, batches of 500", opened, 500),
    ("catalogue", "EnrolmentConfirmed, batches of 500", confirmed, 500),
    ("payments", "CreditsGranted, one per batch", granted, 1),
]


def message(event: Event, source: str) -> Message:
    envelope = Envelope.wrap(event, source=source)
    return Message(topic_for(type(event).topic), event.aggregate_id(), envelope.to_bytes())


async def scenario(url: str, service: str, make: Callable[[], Event], batch: int, n: int) -> float:
    engine = make_engine(url, pool_size=4)
    try:
        runtime = standalone_runtime(definition(service), Settings(), engine)
        messages = [message(make(), "/ila/bench") for _ in range(n)]
        t = time.perf_counter()
        for i in range(0, n, batch):
            await runtime.consumer.handle_batch(messages[i : i + batch])
        return n / (time.perf_counter() - t)
    finally:
        await engine.dispose()


async def run(events: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ila-bench-consumers-"))
    try:
        url = embedded_postgres_url(root)
        engine = make_engine(url)
        for service in ("payments", "catalogue"):
            await migrate(engine, service)
        await engine.dispose()
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "events": events,
            "scenarios": [],
        }
        for service, label, make, batch in SCENARIOS:
            n = events if batch > 1 else max(1, events // 10)
            rate = await scenario(url, service, make, batch, n)
            print(f"{service:<10}{label:<40}{rate:>10,.0f} events/s", flush=True)
            results["scenarios"].append(
                {"service": service, "events": label, "n": n, "events_per_s": round(rate)}
            )
        OUT.mkdir(exist_ok=True)
        path = OUT / "consumers.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten to {path}")
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)
