"""What every app serves for its operators: a correlation id and an access log line per
request, the HTTP metrics, ``/healthz`` (alive), ``/readyz`` (database, relay, bus and
consumer groups reachable; consumer lag within bounds) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.bus import Bus
from shared.logs import correlation_id
from shared.metrics import CONSUMER_LAG, DB_POOL, DB_POOL_SIZE, HTTP_LATENCY, HTTP_REQUESTS
from shared.problems import ServiceUnavailable
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.service import ServiceRuntime

ACCESS = logging.getLogger("ila.access")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Observe:
    """The correlation id (taken from ``X-Correlation-ID`` or new, set for the logs and
    answered back), the HTTP metrics and the access log line of every request. A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` runs each request through another task
    and a memory stream, which a profile of the request path shows."""

    def __init__(self, app: ASGIApp, label: str, templates: Callable[[], dict[int, str]]) -> None:
        self.app = app
        self.label = label
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), ""
        ) or str(uuid.uuid4())
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Correlation-ID"] = cid
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = self.templates().get(id(route)) or getattr(route, "path", "unmatched")
            # only known methods and route templates: a client cannot invent new series
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            HTTP_REQUESTS.labels(self.label, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.label, method, path).observe(elapsed)
            ACCESS.info(
                "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={"status": status, "path": scope["path"], "method": scope["method"]},
            )
            correlation_id.reset(token)


def route_templates(routes: Sequence[Any], base: str = "") -> dict[int, str]:
    """Each route's whole path template (``/v1/ledger/accounts/{account_id}/balance``), by
    the route's identity: the route a request matched names only its path within the router
    that holds it (its own prefix included), and several services have a ``/statistics``.
    An included router's include prefix already counts the prefix of the router holding it."""
    found: dict[int, str] = {}
    for route in routes:
        included = getattr(route, "original_router", None)  # a router included in another
        if included is not None:
            within = getattr(getattr(route, "include_context", None), "prefix", "")
            found.update(route_templates(included.routes, base + within))
        elif isinstance(getattr(route, "path", None), str):
            found[id(route)] = base + route.path
    return found


def install_operations(app: FastAPI, label: str, settings: Settings) -> None:
    known: dict[int, str] = {}

    def templates() -> dict[int, str]:
        if not known:  # every route is in place once requests come
            known.update(route_templates(app.router.routes))
        return known

    app.add_middleware(Observe, label=label, templates=templates)

    @app.get("/healthz", include_in_schema=True, tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> dict[str, Any]:
        """The database and the bus are reachable."""
        runtimes: dict[str, ServiceRuntime] = getattr(request.app.state, "runtimes", {})
        checks: dict[str, str] = {}
        for name, rt in runtimes.items():
            try:
                async with rt.sessions() as session:
                    await session.execute(text("SELECT 1"))
                checks[f"{name}.database"] = "ok"
            except Exception as exc:
                checks[f"{name}.database"] = f"error: {type(exc).__name__}"
        parked: dict[str, int] = {}
        for name, rt in runtimes.items():
            checks[f"{name}.relay"] = "ok" if rt.relay.alive() else "down"
            with contextlib.suppress(Exception):
                if n := await rt.relay.parked():
                    # an alert, not unreadiness: the relay flows on past the parked rows
                    parked[name] = n
        bus: Bus | None = getattr(request.app.state, "bus", None)
        checks["bus"] = "ok" if bus is not None and await bus.ping() else "unreachable"
        if bus is not None:
            for group in bus.down():
                checks[f"consumer.{group}"] = "down"
            bound = settings.readiness_max_lag
            if bound:
                for group, lag in (await bus.lag()).items():
                    if lag > bound:
                        checks[f"consumer.{group}"] = f"lagging: {lag} > {bound}"
        if not runtimes or any(v != "ok" for v in checks.values()):
            raise ServiceUnavailable("not ready", extra={"checks": checks, "outbox_parked": parked})
        return {"status": "ready", "checks": checks, "outbox_parked": parked}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics."""
        runtimes: dict[str, ServiceRuntime] = getattr(request.app.state, "runtimes", {})
        for name, rt in runtimes.items():
            pool = rt.engine.sync_engine.pool
            if isinstance(pool, QueuePool):
                DB_POOL.labels(name, "in_use").set(pool.checkedout())
                DB_POOL.labels(name, "idle").set(pool.checkedin())
                DB_POOL_SIZE.labels(name).set(pool.size())
            with contextlib.suppress(Exception):
                await rt.relay.backlog()
                await rt.relay.parked()
        bus: Bus | None = getattr(request.app.state, "bus", None)
        if bus is not None:
            for group, lag in (await bus.lag()).items():
                CONSUMER_LAG.labels(group).set(lag)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
