"""The demonstration's way into the running system: its public REST API only, with
development tokens minted the way ``ila token`` mints them, many requests at once under a
bound, and polling with a deadline for what happens asynchronously (202 and a saga)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx

from shared.auth import Role, mint_token
from shared.settings import Settings

T = TypeVar("T")
NAMESPACE = uuid.UUID("5f0b8a52-7d1e-4f0a-9a0e-1c6a4f1d2b3c")
TOKEN_TTL = 2 * 3600


class DemoError(RuntimeError):
    """The running system answered something the demonstration cannot go on from."""


def refuse_production(settings: Settings) -> None:
    """Development tokens exist only outside production, and only where the services
    accept HS256 tokens signed with the shared secret."""
    if settings.env == "production":
        raise DemoError("ILA_ENV=production: the demonstration never seeds a production system")
    if settings.jwt_public_key or settings.jwt_jwks_url:
        raise DemoError(
            "ILA_JWT_PUBLIC_KEY / ILA_JWT_JWKS_URL is set: the services verify tokens from an "
            "identity provider, so development tokens would be refused"
        )


def key(*parts: object) -> str:
    """A deterministic idempotency key: the same step of the same run asks once."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


class Api:
    """An HTTP client with tokens per role and a bound on requests in flight."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, concurrency: int) -> None:
        self.client = client
        self.settings = settings
        self.bound = asyncio.Semaphore(concurrency)
        self._tokens: dict[tuple[str, ...], dict[str, str]] = {}
        self.requests = 0
        # how long to wait for what follows events (read models, sagas): more under load
        self.patience = 60.0

    def auth(self, role: Role, sub: str | None = None, **claims: str) -> dict[str, str]:
        cache = (role, sub or "", *sorted(f"{k}={v}" for k, v in claims.items()))
        if cache not in self._tokens:
            token = mint_token(
                self.settings,
                role=role,
                sub=sub or f"demo-{role}",
                ttl_seconds=TOKEN_TTL,
                **claims,
            )
            self._tokens[cache] = {"Authorization": f"Bearer {token}"}
        return self._tokens[cache]

    def agency(self, agency_id: str) -> dict[str, str]:
        return self.auth("agency", f"demo-clerk-{agency_id}", agency_id=agency_id)

    def provider(self, provider_id: str) -> dict[str, str]:
        return self.auth("provider", f"demo-provider-{provider_id}", provider_id=provider_id)

    def learner(self, account_id: str) -> dict[str, str]:
        return self.auth("learner", account_id)

    @property
    def admin(self) -> dict[str, str]:
        return self.auth("admin", "demo-admin")

    @property
    def finance(self) -> dict[str, str]:
        return self.auth("finance", "demo-finance")  # the second person: never the proposer

    @property
    def qa(self) -> dict[str, str]:
        return self.auth("qa", "demo-qa")

    async def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        json: Any = None,
        content: str | None = None,
        idempotency: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {**headers, **(extra_headers or {})}
        if idempotency:
            all_headers["Idempotency-Key"] = idempotency
        async with self.bound:
            self.requests += 1
            for attempt in range(5):
                try:
                    return await self.client.request(
                        method, path, headers=all_headers, json=json, content=content
                    )
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    async def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        expect: Iterable[int] = (200, 201, 202),
        **kwargs: Any,
    ) -> Any:
        """The JSON answer, or :class:`DemoError` naming the request and the answer."""
        r = await self.send(method, path, headers, **kwargs)
        if r.status_code not in set(expect):
            raise DemoError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    async def until(
        self,
        attempt: Callable[[], Awaitable[httpx.Response]],
        done: Callable[[httpx.Response], bool],
        what: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline for polling
        interval: float = 0.2,
    ) -> httpx.Response:
        """Try again until ``done`` holds (a read model caught up, a saga ended), for
        ``timeout`` seconds (default: :attr:`patience`)."""
        timeout = timeout or self.patience
        deadline = time.monotonic() + timeout
        while True:
            r = await attempt()
            if done(r):
                return r
            if time.monotonic() > deadline:
                raise DemoError(f"{what}: still {r.status_code} {r.text[:300]} after {timeout}s")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 2.0)

    async def approve(self, proposed: Any, base: str, response: httpx.Response) -> Any:
        """Finance, a second person, approves what was proposed (four eyes)."""
        if response.status_code != 202:
            raise DemoError(f"proposal refused: {response.status_code} {response.text[:500]}")
        location = response.headers.get("location") or f"{base}/{proposed['approval_id']}"
        return await self.call("POST", f"{location}/approve", self.finance)


async def gather_bounded(items: Iterable[Awaitable[T]]) -> list[T]:
    """Every coroutine, at once: :class:`Api` bounds how many requests are in flight."""
    return list(await asyncio.gather(*items))


def problem_code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None
