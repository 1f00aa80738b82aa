"""The gated routers route every request as FastAPI's own walk does, only faster.

The whole system's app (every service's routes, as ``ila run`` builds it) is built twice:
with each service behind a :class:`GatedRouter`, and with each service's routers included
plainly. Every operation of the API (each path of the OpenAPI document, its parameters
filled in), with its own method and a method it does not serve, and paths no route serves,
get the same answer from both. No database: an unauthenticated request is answered before
any handler needs one, and one that is not routed is answered by the router.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from ila.registry import all_definitions, everything
from shared import service
from shared.routing import GatedRouter, remember_routes_versions
from shared.settings import Settings

FILLER = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def _plain(*routers: APIRouter) -> APIRouter:
    router = APIRouter()
    for r in routers:
        router.include_router(r)
    return router


def _app(monkeypatch: pytest.MonkeyPatch, gated: bool) -> FastAPI:
    with monkeypatch.context() as m:
        if not gated:
            m.setattr(service, "GatedRouter", _plain)
        return service.build_app(everything(), Settings(), all_topics=all_definitions())


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    """Each operation with its parameters filled in, the same path with a method it does
    not serve, and its path with a trailing slash and an extra segment."""
    out = []
    for template, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", FILLER, template)
        for method in operations:
            out.append((method.upper(), path))
        unserved = {"GET", "POST", "PUT", "PATCH", "DELETE"} - {m.upper() for m in operations}
        out.extend((m, path) for m in sorted(unserved)[:1])
        out.append(("GET", path + "/"))
        out.append(("GET", path + "/nothing-here"))
    out += [("GET", "/v1/no-such-thing"), ("POST", "/"), ("GET", "/v1/enrolments/")]
    return out


async def _answers(app: FastAPI, requests: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """Each request's status, body (its content type where not JSON), redirect and the
    endpoint that handled it (None when no route did)."""
    reached: list[Any] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            endpoint = scope.get("endpoint")
            reached.append(f"{endpoint.__module__}.{endpoint.__qualname__}" if endpoint else None)

    transport = httpx.ASGITransport(app=recording, raise_app_exceptions=False)
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://ila.test") as client:
        for method, path in requests:
            r = await client.request(method, path, json={})
            kind = r.headers.get("content-type", "")
            body: Any = r.json() if "json" in kind else kind  # /metrics counts requests
            if isinstance(body, dict):
                body.pop("instance", None)
                body.pop("request_id", None)
            out.append((r.status_code, body, r.headers.get("location"), reached[-1]))
    return out


async def test_every_request_is_routed_as_without_the_gates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gated, plain = _app(monkeypatch, True), _app(monkeypatch, False)
    assert any(isinstance(getattr(r, "original_router", None), GatedRouter) for r in gated.routes)
    assert not any(
        isinstance(getattr(r, "original_router", None), GatedRouter) for r in plain.routes
    )
    requests = _requests(plain)
    assert len(requests) > 300
    assert _requests(gated) == requests
    answers, expected = await _answers(gated, requests), await _answers(plain, requests)
    for request, got, want in zip(requests, answers, expected, strict=True):
        assert got == want, request
    # the comparison covers every operation, wrong methods and unrouted paths
    handled = {r for r, a in zip(requests, expected, strict=True) if a[3] is not None}
    for template, operations in plain.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", FILLER, template)
        assert {(m.upper(), path) for m in operations} <= handled, template
    assert {404, 405} <= {a[0] for a in expected}


async def test_a_gate_answers_no_match_only_for_paths_none_of_its_routes_match() -> None:
    inner = APIRouter(prefix="/v1/things")

    @inner.get("/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    gate = GatedRouter(inner)
    app = FastAPI()
    app.include_router(gate)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ila.test") as client:
        assert (await client.get("/v1/other/1")).status_code == 404
        assert (await client.get("/v1/things/1")).json() == {"thing": "1"}
        assert (await client.delete("/v1/things/1")).status_code == 405
        assert gate._patterns is not None and len(gate._patterns) == 1

        # a router the gate takes in after its first request is seen
        more = APIRouter()

        @more.get("/v1/more")
        async def more_things() -> dict[str, str]:
            return {"more": "yes"}

        gate.include_router(more)
        assert (await client.get("/v1/more")).json() == {"more": "yes"}


async def test_remembered_route_versions_see_a_route_added_below_after_requests() -> None:
    assert remember_routes_versions()
    inner, outer = APIRouter(), APIRouter()

    @inner.get("/a")
    async def a() -> dict[str, str]:
        return {"route": "a"}

    outer.include_router(inner, prefix="/v1")
    app = FastAPI()
    app.include_router(outer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ila.test") as client:
        assert (await client.get("/v1/a")).json() == {"route": "a"}
        assert (await client.get("/v1/b")).status_code == 404
        before = outer._get_routes_version()

        @inner.get("/b")  # two levels below the app, after it served requests
        async def b() -> dict[str, str]:
            return {"route": "b"}

        assert (await client.get("/v1/b")).json() == {"route": "b"}
    # the numbers are FastAPI's own walk's (``seen`` given: no memory)
    assert outer._get_routes_version() == APIRouter._get_routes_version(outer, set()) > before
