"""The flow of one euro with three funders: the state's yearly credit (the allocation), an
employer's earmarked top-up and a region's top-up, spent through reservations and captures
(and one capture reversed); each funder's statement sums to exactly what the ledger's audit
stream says its lots paid, computed here from that stream alone."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.events.ledger import CourseRef
from tests.integration.support import funders
from tests.integration.support.funders import Payments, audit_stream, paid_by_funder
from tests.integration.support.ledger import THIS_YEAR, Api

pytestmark = pytest.mark.postgres

DIGITAL = CourseRef(course_id=uuid.uuid4(), isced_field="0613", eqf_level=5)
WELDING = CourseRef(course_id=uuid.uuid4(), isced_field="0715", eqf_level=4)


async def test_each_funders_statement_is_what_the_ledger_says_its_lots_paid(api: Api) -> None:
    state = await funders.funder(api, "state")
    employer = await funders.funder(api, "employer", employer_id="emp-42")
    region = await funders.funder(api, "region", region="FR-IDF")
    ann, bob = await api.account(), await api.account()
    # the state's yearly credit, through the approved policy and allocation
    await api.policy(THIS_YEAR, base_amount=20_000, cap=100_000, funder_id=state)
    assert (await api.allocate(THIS_YEAR))["status"] == "finished"
    # an employer's earmarked top-up (digital courses), a region's top-ups that expire soon
    await funders.budget(api, employer, THIS_YEAR, 50_000)
    await funders.budget(api, region, THIS_YEAR, 50_000)
    soon = (datetime.now(UTC) + timedelta(days=200)).isoformat()
    assert (
        await funders.grant(api, employer, ann, 5_000, earmark={"isced_fields": ["06"]})
    ).status_code == 201
    for account in (ann, bob):
        assert (
            await funders.grant(api, region, account, 3_000, expires_at=soon)
        ).status_code == 201

    pay = Payments(api)
    # ann: the earmarked lot first, then the region's (it expires first), then the state's
    digital = await pay.enrol(ann, DIGITAL, 9_000, "provider-a")
    await pay.capture(digital, 2_500, final=False)
    await pay.capture(digital, 6_000)
    # bob: the region's lot, then the state's; this capture is reversed under four eyes
    welding = await pay.enrol(bob, WELDING, 4_500, "provider-b")
    await pay.capture(welding, 4_500)
    r = await api.c.post(
        f"/v1/ledger/accounts/{bob}/reversals",
        headers={**api.admin, "Idempotency-Key": str(uuid.uuid4())},
        json={
            "target": {"kind": "capture", "reservation_id": str(welding["reservation_id"])},
            "reason_code": "provider_error",
        },
    )
    assert r.status_code == 202, r.text
    assert (await api.approve(r.json()["approval_id"])).status_code == 200
    # and bob spends again, with another provider
    again = await pay.enrol(bob, WELDING, 1_000, "provider-c")
    await pay.capture(again, 1_000)

    paid = paid_by_funder(await audit_stream(api))
    assert set(paid) == {state, employer, region}
    assert paid[employer] == 5_000  # the earmarked lot, all of it
    today = datetime.now(UTC).date().isoformat()
    period = {"from": today, "to": today}
    for funder, reader in (
        (state, api.finance),
        (employer, funders.token(api, employer)),
        (region, api.auditor),
    ):
        r = await api.c.get(f"/v1/ledger/funders/{funder}/statement", params=period, headers=reader)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["totals"]["net"] == paid[funder], (funder, body)
        assert sum(line["amount"] for line in body["lines"]) == paid[funder]
        assert all(line["enrolment_id"] and line["provider_id"] for line in body["lines"])
        assert all(line["claim_id"] for line in body["lines"] if line["kind"] == "capture")
        # the same as CSV, to the cent
        r = await api.c.get(
            f"/v1/ledger/funders/{funder}/statement",
            params=period,
            headers={**reader, "Accept": "text/csv"},
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sum(int(row["amount"]) for row in rows) == paid[funder]
        assert int(r.headers["x-statement-net"]) == paid[funder]
        assert len(rows) == len(body["lines"])

    region_lines = (
        await api.c.get(
            f"/v1/ledger/funders/{region}/statement", params=period, headers=api.auditor
        )
    ).json()
    providers = {p["provider_id"]: p["net"] for p in region_lines["totals"]["by_provider"]}
    assert providers["provider-a"] == 3_000 and providers["provider-b"] == 0  # reversed
    assert region_lines["totals"]["reversed"] == 3_000
    # a period with nothing in it; a funder that is not the caller; a bad period
    empty = await api.c.get(
        f"/v1/ledger/funders/{region}/statement",
        params={"from": "2001-01-01", "to": "2001-12-31"},
        headers=api.auditor,
    )
    assert empty.json()["totals"]["net"] == 0 and empty.json()["lines"] == []
    foreign = await api.c.get(
        f"/v1/ledger/funders/{region}/statement",
        params=period,
        headers=funders.token(api, employer),
    )
    assert foreign.status_code == 404
    for params, status in (
        ({"from": today, "to": "2001-01-01"}, 422),
        ({"from": "2001-01-01", "to": "2003-01-01"}, 422),
        ({"from": today}, 422),
    ):
        r = await api.c.get(
            f"/v1/ledger/funders/{region}/statement", params=params, headers=api.auditor
        )
        assert r.status_code == status, r.text
    assert (
        await api.c.get(f"/v1/ledger/funders/{region}/statement", params=period, headers=api.agency)
    ).status_code == 403
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]
