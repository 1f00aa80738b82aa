"""Test helpers: settings, tokens, apps in-process, polling with a deadline, a Kafka
topic's configuration."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from fastapi import FastAPI

from shared.auth import Role, mint_token
from shared.bus import Bus
from shared.service import ServiceDefinition, build_app
from shared.settings import Settings

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "log_json": False,
        "log_level": "WARNING",
        "relay_idle_interval": 0.2,
        "data_dir": Path("var/test"),
    }
    base.update(overrides)
    return Settings(**base)


def token(settings: Settings, role: Role, sub: str | None = None, **claims: Any) -> str:
    return mint_token(settings, role=role, sub=sub or str(uuid.uuid4()), **claims)


def bearer(settings: Settings, role: Role, sub: str | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, role, sub, **claims)}"}


@asynccontextmanager
async def running_app(
    definitions: Sequence[ServiceDefinition],
    settings: Settings,
    bus: Bus | None = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(definitions, settings, bus=bus, **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ila.test") as client:
            yield app, client


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = bool,
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``check`` holds; fail with the last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = await probe()
    while not check(value):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def retention_ms(bootstrap: str, topic: str) -> str:
    """A Kafka topic's ``retention.ms`` as the broker reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})]
        )
    finally:
        await admin.close()
    [resource] = [r for response in responses for r in response.resources]
    error_code, _message, _type, name, entries = resource[:5]
    assert (error_code, name) == (0, topic)
    values = {entry[0]: entry[1] for entry in entries}
    return str(values["retention.ms"])
