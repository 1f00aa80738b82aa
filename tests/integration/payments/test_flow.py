"""The flow of one euro through the four services' APIs in one process: account, credit,
provider and course in the catalogue, enrolment and consent, claim, capture, payout with its
SEPA file, the micro-credential issued, and an auditor's clean verification."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import xmlschema
from sqlalchemy import text

from ila.registry import definition
from services.payments.config import PaymentsConfig
from services.payments.main import definition as payments_definition
from services.payments.store import read_models
from shared.clock import Clock
from tests.integration.support.catalogue import course_body, provider_body
from tests.integration.support.payments import XSD, World
from tests.support import eventually, running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_the_flow_of_one_euro(db_url: str) -> None:
    settings = settings_for(db_url)
    clock = Clock()
    definitions = [
        definition("accounts"),
        definition("ledger"),
        definition("catalogue"),
        payments_definition(PaymentsConfig(), clock),
    ]
    async with running_app(definitions, settings, run_jobs=False) as (app, client):
        w = World(app, client, settings, clock)
        account = await w.account(credit=200_000, employment_status="employed")
        r = await client.post("/v1/providers", json=provider_body(), headers=w.agency)
        assert r.status_code == 201, r.text
        provider_id = r.json()["provider_id"]
        r = await client.post(
            f"/v1/providers/{provider_id}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=w.agency,
        )
        assert r.status_code == 200, r.text
        provider = w.provider(provider_id)
        body = course_body(price=125_000)
        r = await client.post("/v1/courses", json=body, headers=provider)
        assert r.status_code == 201, r.text
        course_id = r.json()["course_id"]
        assert (await client.post(f"/v1/courses/{course_id}/submit", headers=provider)).is_success
        r = await client.post(
            f"/v1/courses/{course_id}/approve",
            json={"reason_code": "meets_criteria"},
            headers=w.agency,
        )
        assert r.status_code == 200, r.text
        session_id = body["sessions"][0]["session_id"]

        async def course_known() -> Any:
            async with w.rt.sessions() as s:
                return await read_models.course(s, uuid.UUID(course_id))

        await eventually(course_known, lambda c: c is not None and c.status == "approved")
        e = await w.enrolled(provider_id, account, (course_id, session_id))
        assert e["status"] == "confirmed" and e["covered"] == 115_000 and e["co_payment"] == 10_000

        clock.advance(timedelta(days=41))  # the session is over
        r = await w.claim(provider_id, e["enrolment_id"], rate=90, certified=True, grade="pass")
        assert r.json()["status"] == "approved", r.text
        await w.payable(r.json()["claim_id"])  # captured, and attested by the learner
        balance = await w.balance(account)
        assert balance["spent_total"] == 115_000 and balance["available"] == 85_000

        run = await w.released_run()
        payout = run["payouts"][0]
        assert payout["provider_id"] == provider_id and payout["amount"] == 115_000
        sepa = await client.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=provider)
        xmlschema.XMLSchema(str(XSD)).validate(sepa.text)

        async def credentials() -> list[Any]:
            async with app.state.runtimes["catalogue"].sessions() as s:
                rows = await s.execute(
                    text("SELECT body FROM catalogue.outbox WHERE type LIKE :t"),
                    {"t": "ila.catalogue.CredentialIssued.%"},
                )
                return list(rows)

        issued = await eventually(credentials)
        assert len(issued) == 1
        report = (await client.post("/v1/ledger/audit/verify", headers=w.auditor)).json()
        assert report["ok"], report
