"""The flow of one euro with the four services as separate processes over the real Kafka
broker: an agency opens an account, the yearly policy and allocation (each approved by a
second person) grant credit, a provider is registered and its course approved, the provider
enrols the learner, the learner confirms, the ledger reserves, the session ends, the provider
claims, the ledger captures, the learner attests, the payout run (released by finance) pays
with a SEPA file, the catalogue issues a credential anyone can verify, and the auditors'
checks (verify and replay from the topic alone) come out clean."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema

from ila.kafka import KafkaBroker
from ila.kafka_secure import SecureBroker
from shared.settings import SERVICES
from tests.e2e.support import REPO, Cluster, allocate, approved
from tests.integration.support.accounts import BODY
from tests.integration.support.catalogue import course_body, provider_body
from tests.integration.support.payments import XSD
from tests.support import bearer, eventually, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(params=["plaintext", "sasl_ssl"])
def broker(request: pytest.FixtureRequest) -> tuple[str, SecureBroker | None]:
    """The open development broker, or the SASL_SSL one where every service logs in as its
    own principal, verifies the broker's certificate and is held to its ACLs."""
    if request.param == "plaintext":
        return request.getfixturevalue("kafka_bootstrap"), None
    secure: KafkaBroker = request.getfixturevalue("secure_kafka")
    return secure.bootstrap, secure.secure


async def test_one_euro_across_four_processes_over_kafka(
    db_url: str, broker: tuple[str, SecureBroker | None], tmp_path: Path
) -> None:
    kafka_bootstrap, secure = broker
    cluster = Cluster(db_url, kafka_bootstrap, tmp_path, secure=secure)
    await cluster.authorize()
    cluster.start()
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    admin = bearer(settings, "admin")
    finance = bearer(settings, "finance")
    auditor = bearer(settings, "auditor")
    acc, led, cat, pay = (cluster.url(s) for s in SERVICES)
    try:
        await cluster.ready()
        async with httpx.AsyncClient(timeout=15) as c:
            # 1. the agency opens an account; the ledger opens its wallet
            body = {
                **BODY,
                "national_id": "E1-" + uuid.uuid4().hex[:10],
                "employment_status": "employed",
                "qualification_level": 5,
                "need_flags": [],
            }
            r = await c.post(f"{acc}/v1/accounts", json=body, headers=agency)
            assert r.status_code == 201, r.text
            account = r.json()["account_id"]
            learner = bearer(settings, "learner", sub=account)

            async def balance() -> dict[str, Any]:
                r = await c.get(f"{led}/v1/ledger/accounts/{account}/balance", headers=learner)
                return r.json() if r.status_code == 200 else {}  # type: ignore[no-any-return]

            await eventually(balance, lambda b: b.get("status") == "open", timeout=60)

            # 2. the yearly allocation grants the statutory credit (admin proposes the policy
            # and the run, finance approves each)
            run = await allocate(c, led, date.today().year, admin, finance)
            await eventually(
                lambda: c.get(run, headers=admin),
                lambda resp: resp.json()["status"] == "finished",
                timeout=60,
            )
            assert (await balance())["available"] == 50_000

            # 3. a provider is registered and accredited, its course approved
            r = await c.post(f"{cat}/v1/providers", json=provider_body(), headers=agency)
            assert r.status_code == 201, r.text
            provider_id = r.json()["provider_id"]
            r = await c.post(
                f"{cat}/v1/providers/{provider_id}/accredit",
                json={"reason_code": "qa_audit_passed"},
                headers=agency,
            )
            assert r.status_code == 200, r.text
            provider = bearer(settings, "provider", provider_id=provider_id)
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
            course = course_body(price=40_000)
            course["sessions"][0]["start"] = start.isoformat()
            end = start + timedelta(seconds=12)
            course["sessions"][0]["end"] = end.isoformat()
            r = await c.post(f"{cat}/v1/courses", json=course, headers=provider)
            assert r.status_code == 201, r.text
            course_id = r.json()["course_id"]
            assert (
                await c.post(f"{cat}/v1/courses/{course_id}/submit", headers=provider)
            ).status_code == 200
            r = await c.post(
                f"{cat}/v1/courses/{course_id}/approve",
                json={"reason_code": "meets_criteria"},
                headers=agency,
            )
            assert r.status_code == 200, r.text

            # 4. the provider proposes the enrolment once payments has heard of the course
            proposal = {
                "account_id": account,
                "course_id": course_id,
                "session_id": course["sessions"][0]["session_id"],
            }
            r = await eventually(
                lambda: c.post(f"{pay}/v1/enrolments", json=proposal, headers=provider),
                lambda resp: resp.status_code == 202,
                timeout=60,
                interval=0.3,
            )
            enrolment = r.json()
            assert enrolment["status"] == "awaiting_learner_confirmation"
            eid = enrolment["enrolment_id"]

            # 5. the learner confirms; the ledger reserves price minus the participation fee
            r = await c.post(f"{pay}/v1/enrolments/{eid}/confirm", json={}, headers=learner)
            assert r.status_code == 202, r.text
            e = await eventually(
                lambda: _json(c, f"{pay}/v1/enrolments/{eid}", learner),
                lambda e: e["status"] in ("confirmed", "rejected"),
                timeout=60,
            )
            assert e["status"] == "confirmed", e
            assert e["covered"] == 30_000 and e["co_payment"] == 10_000
            b = await balance()
            assert b["reserved"] == 30_000 and b["available"] == 20_000

            # 6. once the session is over, the provider claims completion with evidence
            await eventually(lambda: _now(), lambda now: now > end, timeout=60, interval=0.5)
            r = await c.post(
                f"{pay}/v1/claims",
                headers={**provider, "Idempotency-Key": str(uuid.uuid4())},
                json={
                    "enrolment_id": eid,
                    "milestone": "completion",
                    "evidence": {
                        "started_on": str(start.date()),
                        "completed_on": str(end.date()),
                        "completion_rate": 90,
                        "certified": True,
                        "grade": "pass",
                    },
                },
            )
            assert r.status_code == 202, r.text
            claim_id = r.json()["claim_id"]
            await eventually(
                lambda: _json(c, f"{pay}/v1/claims/{claim_id}", provider),
                lambda cl: cl["status"] == "captured",
                timeout=60,
            )
            b = await balance()
            assert b["spent_total"] == 30_000 and b["reserved"] == 0 and b["available"] == 20_000

            # the learner attests that the training was given: the claim becomes payable
            r = await c.post(f"{pay}/v1/claims/{claim_id}/attest", headers=learner)
            assert r.status_code == 200, r.text

            # finance verifies the bank details the provider was registered with (until then,
            # or until the cooling-off passes, its payouts are held)
            payee = await eventually(
                lambda: c.get(f"{pay}/v1/payees/{provider_id}", headers=finance),
                lambda resp: resp.status_code == 200,
                timeout=30,
            )
            r = await c.post(
                f"{pay}/v1/payees/{provider_id}/verification",
                headers=finance,
                json={"iban": payee.json()["iban"], "result": "match"},
            )
            assert r.status_code == 200 and r.json()["payable"] is True, r.text

            # 7. the payout run, released by finance, pays the provider with a valid SEPA
            # credit transfer
            r = await c.post(
                f"{pay}/v1/payouts/runs",
                headers={**agency, "Idempotency-Key": str(uuid.uuid4())},
                json={},
            )
            await approved(c, pay, r, finance)
            payouts = await eventually(
                lambda: _json(c, f"{pay}/v1/payouts", provider),
                lambda p: bool(p.get("items")),
                timeout=30,
            )
            payout = payouts["items"][0]
            assert payout["amount"] == 30_000
            sepa = await c.get(f"{pay}/v1/payouts/{payout['payout_id']}/sepa", headers=provider)
            assert sepa.status_code == 200
            xmlschema.XMLSchema(str(XSD)).validate(sepa.text)

            # 8. the catalogue issued the micro-credential, verifiable by anyone
            creds = await eventually(
                lambda: _json(c, f"{cat}/v1/credentials", learner),
                lambda items: len(items) == 1,
                timeout=60,
            )
            r = await c.post(f"{cat}/v1/credentials/verify", json=creds[0]["credential"])
            assert r.status_code == 200 and r.json()["valid"] is True, r.text

            # 9. the auditors: every chain and projection verifies
            report = (await c.post(f"{led}/v1/ledger/audit/verify", headers=auditor)).json()
            assert report["ok"], report
    finally:
        cluster.stop()

    # and the ledger topic alone rebuilds the same balances
    env = {
        **os.environ,
        "ILA_DATABASE_URL": db_url,
        "ILA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ILA_ENV": "test",
        "ILA_KAFKA_TOPIC_PREFIX": cluster.prefix,
        **cluster.kafka_env("audit"),
    }
    cluster.start("ledger")
    try:
        await cluster.ready("ledger")
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ila.cli", "audit", "replay", "--url", cluster.url("ledger")],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
    finally:
        cluster.stop()


async def _json(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    r = await c.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _now() -> datetime:
    return datetime.now(UTC)
