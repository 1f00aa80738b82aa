"""Cross-cutting HTTP behaviour on the real database: RFC 9457 problems for every error,
authentication, health, readiness, metrics, correlation ids, Idempotency-Key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from ila.registry import all_definitions
from shared.ops import route_templates
from tests.integration.support.accounts import BODY
from tests.support import bearer, running_app, settings_for

pytestmark = pytest.mark.postgres


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (_, c):
        yield c, bearer(settings, "agency", agency_id="pes-fr")


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


async def test_errors_are_problem_documents(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, agency = client
    assert_problem(await c.get("/v1/nowhere", headers=agency), 404)
    assert_problem(await c.put("/v1/accounts", headers=agency), 405)
    assert_problem(await c.get("/v1/accounts/not-a-uuid", headers=agency), 422)
    body = assert_problem(
        await c.post(
            "/v1/accounts",
            content=b"{not json",
            headers={**agency, "content-type": "application/json"},
        ),
        422,
    )
    assert body["errors"]
    r = await c.post("/v1/accounts", json=BODY)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert_problem(
        await c.post("/v1/accounts", json=BODY, headers={"Authorization": "Bearer nonsense"}), 401
    )


async def test_health_readiness_metrics_and_correlation(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, _ = client
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    ready = (await c.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["checks"]["ledger.database"] == "ok"
    r = await c.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["x-correlation-id"] == "abc-123"
    metrics = (await c.get("/metrics")).text
    for name in (
        "ila_http_requests_total",
        "ila_http_request_duration_seconds",
        "ila_outbox_backlog",
        "ila_events_published_total",
    ):
        assert name in metrics
    spec = (await c.get("/openapi.json")).json()
    for path in ("/v1/accounts", "/v1/ledger/accounts/{account_id}/balance"):
        assert path in spec["paths"]


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_every_request_is_logged_and_counted_under_its_route(db_url: str) -> None:
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        await _logged_and_counted(app, c, bearer(settings, "agency", agency_id="pes-fr"))


async def _logged_and_counted(app: FastAPI, c: httpx.AsyncClient, agency: dict[str, str]) -> None:
    account = "7b0c3a52-58a4-4c55-9a39-0c5fb0bb7c6e"
    route = "/v1/ledger/accounts/{account_id}/balance"

    def counted(status: str) -> float:
        series = f'ila_http_requests_total{{method="GET",route="{route}",service="ila",'
        for line in metrics.splitlines():
            if line.startswith(series + f'status="{status}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    metrics = (await c.get("/metrics")).text
    before = counted("404"), counted("401")
    access, kept = logging.getLogger("ila.access"), Kept()
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(kept)
    try:
        r = await c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency)
        assert r.status_code == 404 and r.headers["x-correlation-id"]
        assert (await c.get(f"/v1/ledger/accounts/{account}/balance")).status_code == 401
    finally:
        access.removeHandler(kept)
        access.setLevel(level)
    lines = kept.records
    assert [(rec.getMessage().split(" ")[:3]) for rec in lines] == [
        ["GET", f"/v1/ledger/accounts/{account}/balance", "404"],
        ["GET", f"/v1/ledger/accounts/{account}/balance", "401"],
    ]
    metrics = (await c.get("/metrics")).text
    assert (counted("404"), counted("401")) == (before[0] + 1, before[1] + 1)
    # every route of the app is counted under a path of its public contract (the metrics
    # registry is the process's: other tests' apps count there too)
    paths = set((await c.get("/openapi.json")).json()["paths"])
    templates = set(route_templates(app.router.routes).values())
    assert route in templates and "/accounts/{account_id}/balance" not in templates
    assert templates <= paths | {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
                                 "/docs/oauth2-redirect", "/redoc"}  # fmt: skip


async def test_idempotency_key_replays_the_first_response(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, agency = client
    headers = {**agency, "Idempotency-Key": "open-1"}
    first = await c.post("/v1/accounts", json=BODY, headers=headers)
    second = await c.post("/v1/accounts", json=BODY, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await c.post("/v1/accounts", json={**BODY, "region": "Bretagne"}, headers=headers)
    assert_problem(other, 422)
    assert_problem(
        await c.post("/v1/accounts", json=BODY, headers={**agency, "Idempotency-Key": "x" * 300}),
        400,
    )


async def test_the_request_correlation_id_travels_into_the_events(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    import uuid

    from tests.support import eventually

    c, agency = client
    account = (await c.post("/v1/accounts", json=BODY, headers=agency)).json()["account_id"]
    await eventually(
        lambda: c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency),
        lambda r: r.status_code == 200,
    )
    cid = str(uuid.uuid4())
    r = await c.post(
        "/v1/ledger/grants",
        headers={**agency, "X-Correlation-ID": cid, "Idempotency-Key": cid},
        json={"account_id": account, "amount": 100, "funder_id": "f", "reason_code": "top_up"},
    )
    assert r.status_code == 201, r.text
    entries = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=agency)).json()
    granted = [e for e in entries["items"] if e["type"].endswith("CreditsGranted.v2")]
    assert granted[0]["metadata"]["correlation_id"] == cid
    assert granted[0]["metadata"]["actor"].startswith("agency:")
