"""The services' public APIs, called with the signed-in person's token.

In the all-in-one server (``ila run``) the calls go to the same application in process
(no socket); with ``ILA_PORTAL_API_URL`` set they go over HTTP to that address (a gateway
in front of the four services). Either way each call passes through the service's own
authentication, scope and rules: the portal is one more client, with no way around them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Request

IN_PROCESS = "http://ila.internal"
TIMEOUT = httpx.Timeout(10.0)


class ApiError(Exception):
    """A service refused a call: its status and problem document."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or str(status))
        self.status = status
        self.problem = problem


class ServiceApi:
    """A client of the services for one person: every request carries their token."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._token = token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        response = await self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase}
            raise ApiError(response.status_code, problem)
        return response

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    async def post(self, path: str, **kwargs: Any) -> Any:
        response = await self.request("POST", path, **kwargs)
        return response.json() if response.content else None


@asynccontextmanager
async def http_client(request: Request) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the services: in process unless ``portal_api_url`` is set."""
    base = request.app.state.settings.portal_api_url
    if base:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
            yield http
    else:
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=IN_PROCESS, timeout=TIMEOUT
        ) as http:
            yield http
