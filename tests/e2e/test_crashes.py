"""Processes killed (SIGKILL) at arbitrary instants under load: nothing is lost, nothing is
applied twice, no balance goes negative, and the auditors' checks stay clean."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.ledger.audit import verify
from shared.db import make_sessionmaker
from shared.events import Envelope
from shared.events.ledger import CourseRef
from shared.events.payments import EnrolmentRequested
from tests.e2e.support import Cluster, allocate
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


async def test_killing_accounts_and_ledger_mid_stream_loses_and_doubles_nothing(
    db_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = Cluster(db_url, kafka_bootstrap, tmp_path)
    cluster.start("accounts", "ledger")
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    admin = bearer(settings, "admin")
    finance = bearer(settings, "finance")
    engine = create_async_engine(db_url)
    try:
        await cluster.ready("accounts", "ledger")
        opened: list[str] = []
        async with httpx.AsyncClient(timeout=10) as client:
            # accounts opened while the accounts process is killed half-way through
            async def open_many(n: int) -> None:
                for _ in range(n):
                    body = {**BODY, "national_id": "K" + uuid.uuid4().hex[:12]}
                    try:
                        r = await client.post(
                            f"{cluster.url('accounts')}/v1/accounts", json=body, headers=agency
                        )
                    except httpx.HTTPError:
                        continue  # the process died under this request: no promise was made
                    if r.status_code == 201:
                        opened.append(r.json()["account_id"])

            await open_many(30)
            cluster.kill("accounts")
            cluster.start("accounts")
            await cluster.ready("accounts")
            await open_many(20)

            async def wallets() -> int:
                async with engine.connect() as conn:
                    return int(
                        await conn.scalar(
                            text(
                                "SELECT count(*) FROM ledger.wallets WHERE account_id = ANY(:ids)"
                            ),
                            {"ids": [uuid.UUID(a) for a in opened]},
                        )
                        or 0
                    )

            # every account the API confirmed has its wallet: no event was lost
            await eventually(wallets, lambda n: n == len(opened), timeout=60)

            location = await allocate(
                client, cluster.url("ledger"), date.today().year + 1, admin, finance
            )
            await eventually(
                lambda: client.get(location, headers=admin),
                lambda r: r.json()["status"] == "finished",
                timeout=60,
            )

        # 600 reservation requests of 9,000 each (credit: 80,000 → at most 8 per account)
        requests = [
            EnrolmentRequested(
                enrolment_id=uuid.uuid4(),
                account_id=uuid.UUID(opened[i % len(opened)]),
                reservation_id=uuid.uuid4(),
                provider_id=f"p{i % 7}",
                course=CourseRef(course_id=uuid.uuid4()),
                course_version=1,
                amount=9_000,
            )
            for i in range(600)
        ]
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for r in requests:
                await producer.send(
                    f"{cluster.prefix}payments",
                    Envelope.wrap(r, source="/ila/payments").to_bytes(),
                    key=str(r.account_id).encode(),
                )
            await producer.flush()
        finally:
            await producer.stop()

        async def decided() -> int:
            async with engine.connect() as conn:
                return int(
                    await conn.scalar(
                        text(
                            "SELECT count(*) FROM ledger.events WHERE type LIKE "
                            "'%CreditsReserved%' OR type LIKE '%ReservationRejected%'"
                        )
                    )
                    or 0
                )

        await eventually(decided, lambda n: n >= 40, timeout=60, interval=0.01)
        cluster.kill("ledger")  # mid-stream, with batches in flight
        cluster.start("ledger")
        await cluster.ready("ledger")
        await eventually(decided, lambda n: n >= 600, timeout=120)
        await asyncio.sleep(1.0)

        async with engine.connect() as conn:
            per_enrolment = (
                await conn.execute(
                    text(
                        "SELECT data->>'enrolment_id' AS e, count(*) FROM ledger.events "
                        "WHERE type LIKE '%CreditsReserved%' "
                        "OR type LIKE '%ReservationRejected%' GROUP BY 1"
                    )
                )
            ).all()
            negative = await conn.scalar(
                text("SELECT count(*) FROM ledger.wallets WHERE available < 0 OR reserved < 0")
            )
            reserved = await conn.scalar(
                text("SELECT count(*) FROM ledger.events WHERE type LIKE '%CreditsReserved%'")
            )
        assert len(per_enrolment) == 600 and all(n == 1 for _, n in per_enrolment)
        assert negative == 0
        per_account: dict[uuid.UUID, int] = {}
        for r in requests:
            per_account[r.account_id] = per_account.get(r.account_id, 0) + 1
        assert reserved == sum(min(n, 80_000 // 9_000) for n in per_account.values())
        async with make_sessionmaker(engine)() as session:
            report = await verify(session)
        assert report.ok, report.mismatches[:5]
    finally:
        cluster.stop()
        await engine.dispose()
