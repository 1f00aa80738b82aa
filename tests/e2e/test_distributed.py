"""The walking skeleton with four separate service processes over the real Kafka broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from ila.registry import all_definitions
from shared.settings import SERVICES
from tests.e2e.support import Cluster, allocate
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def services(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    cluster = Cluster(db_url, kafka_bootstrap, tmp_path)
    cluster.start()
    try:
        yield {"prefix": cluster.prefix} | {name: cluster.url(name) for name in SERVICES}
    finally:
        cluster.stop()


async def test_walking_skeleton_over_kafka(
    services: dict[str, str], db_url: str, kafka_bootstrap: str
) -> None:
    assert len(all_definitions()) == 4
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            base = services[name]
            await eventually(lambda base=base: _ready(client, base), timeout=90, interval=0.5)
        r = await client.post(f"{services['accounts']}/v1/accounts", json=BODY, headers=agency)
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]
        learner = bearer(settings, "learner", sub=account_id)
        balance = await eventually(
            lambda: client.get(
                f"{services['ledger']}/v1/ledger/accounts/{account_id}/balance", headers=learner
            ),
            lambda resp: resp.status_code == 200,
            timeout=60,
            interval=0.2,
        )
        assert balance.json()["available"] == 0
        assert balance.json()["status"] == "open"
    # the services created their topics explicitly: the ledger's is kept forever
    from tests.support import retention_ms

    assert await retention_ms(kafka_bootstrap, f"{services['prefix']}ledger") == "-1"
    assert await retention_ms(kafka_bootstrap, f"{services['prefix']}accounts") != "-1"


async def _ready(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


def ila(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ila.cli", *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_account_lifecycle_reaches_the_ledger_and_auditors_can_replay(
    services: dict[str, str], db_url: str, kafka_bootstrap: str
) -> None:
    from aiokafka import AIOKafkaProducer
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.events import Envelope
    from shared.events.ledger import CourseRef
    from shared.events.payments import EnrolmentRequested

    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    admin = bearer(settings, "admin")
    finance = bearer(settings, "finance")
    auditor = bearer(settings, "auditor")
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            base = services[name]
            await eventually(lambda base=base: _ready(client, base), timeout=90, interval=0.5)
        acc, led = services["accounts"], services["ledger"]
        body = {
            **BODY,
            "national_id": "E2E-" + uuid.uuid4().hex[:8],
            "qualification_level": 6,
            "employment_status": "employed",
            "need_flags": [],
        }
        account_id = (await client.post(f"{acc}/v1/accounts", json=body, headers=agency)).json()[
            "account_id"
        ]

        async def wallet() -> dict[str, object]:
            r = await client.get(f"{led}/v1/ledger/accounts/{account_id}/balance", headers=auditor)
            return r.json() if r.status_code == 200 else {}

        await eventually(wallet, lambda w: w.get("status") == "open", timeout=60)
        # the profile change modulates the next allocation: low qualification earns more
        r = await client.patch(
            f"{acc}/v1/accounts/{account_id}/profile",
            json={"qualification_level": 2},
            headers=agency,
        )
        assert r.status_code == 200, r.text
        entries_url = f"{led}/v1/ledger/accounts/{account_id}/entries"
        await eventually(
            lambda: client.get(entries_url, headers=auditor),
            lambda r: (
                "ProfileNoted" in r.text and 'qualification_level":2' in r.text.replace(" ", "")
            ),
            timeout=60,
        )
        run_url = await allocate(client, led, date.today().year + 1, admin, finance)
        await eventually(
            lambda: client.get(run_url, headers=admin),
            lambda r: r.json()["status"] == "finished",
            timeout=60,
        )
        assert (await wallet())["available"] == 80_000

        # suspension: the ledger refuses new reservations with that reason
        r = await client.post(
            f"{acc}/v1/accounts/{account_id}/suspend",
            json={"reason_code": "eligibility_review"},
            headers=agency,
        )
        assert r.status_code == 200, r.text
        await eventually(wallet, lambda w: w.get("status") == "suspended", timeout=60)
        request = EnrolmentRequested(
            enrolment_id=uuid.uuid4(),
            account_id=uuid.UUID(account_id),
            reservation_id=uuid.uuid4(),
            provider_id="prov-1",
            course=CourseRef(course_id=uuid.uuid4()),
            course_version=1,
            amount=10_000,
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(
            f"{services['prefix']}payments",
            Envelope.wrap(request, source="/ila/payments").to_bytes(),
            key=account_id.encode(),
        )
        await producer.stop()
        await eventually(
            lambda: client.get(entries_url, headers=auditor),
            lambda r: "account_suspended" in r.text,
            timeout=60,
        )
        assert (await wallet())["reserved"] == 0
        r = await client.post(
            f"{acc}/v1/accounts/{account_id}/close",
            json={"reason_code": "moved_abroad"},
            headers=agency,
        )
        assert r.status_code == 200
        await eventually(wallet, lambda w: w.get("status") == "closed", timeout=60)

    # auditors: the database verifies, and the topic alone rebuilds the same balances
    env = {
        "ILA_DATABASE_URL": db_url,
        "ILA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ILA_ENV": "test",
        "ILA_KAFKA_TOPIC_PREFIX": services["prefix"],
    }
    verified = ila("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = ila("audit", "replay", "--url", services["ledger"], env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay matches the service" in replayed.stdout
    exported = ila("audit", "export", env=env)
    assert exported.returncode == 0 and account_id in exported.stdout

    # a projection altered behind the service's back: replay and verify both object
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE ledger.wallets SET available = available + 1 WHERE account_id = :a"),
            {"a": account_id},
        )
    await engine.dispose()
    assert ila("audit", "replay", "--url", services["ledger"], env=env).returncode == 1
    assert ila("audit", "verify", env=env).returncode == 1
