"""Test helpers: settings, tokens, apps in-process, polling with a deadline, a Kafka
topic's configuration."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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


def database_url(admin_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``admin_url``."""
    base, _, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


async def admin_sql(admin_url: str, sql: str) -> None:
    """One statement outside any transaction (CREATE DATABASE ...)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def create_database(admin_url: str) -> str:
    """A fresh, empty database on the test server; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def migrated_template(admin_url: str, service: str) -> str:
    """A database with ``service``'s schema migrated, to copy (``CREATE DATABASE ...
    TEMPLATE``) for each example of a property test; its name."""
    from shared.db import make_engine, migrate

    name = f"tpl_{uuid.uuid4().hex[:10]}"

    async def build() -> None:
        await admin_sql(admin_url, f'CREATE DATABASE "{name}"')
        engine = make_engine(database_url(admin_url, name), pool_size=1)
        try:
            await migrate(engine, service)
        finally:
            await engine.dispose()

    asyncio.run(build())
    return name


class ExampleDatabase:
    """For a hypothesis state machine: each example on a fresh copy of ``template`` (a
    migrated database on the server of ``admin_url``, both set by the test), on an event
    loop of its own, disposed of at teardown."""

    admin_url: ClassVar[str] = ""
    template: ClassVar[str] = ""

    def __init__(self) -> None:
        from shared.db import make_engine, make_sessionmaker

        super().__init__()
        self.loop = asyncio.new_event_loop()
        name = f"p_{uuid.uuid4().hex[:12]}"
        self.loop.run_until_complete(
            admin_sql(self.admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        )
        self.engine = make_engine(database_url(self.admin_url, name), pool_size=2)
        self.sessions = make_sessionmaker(self.engine)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()


@asynccontextmanager
async def outbox_schema(db_url: str, schema: str, pool_size: int) -> AsyncIterator[Any]:
    """An engine on ``db_url`` whose database has ``schema`` with the kernel's tables and
    the outbox as the migrations leave it (parking, bulk rows), and no service's own tables:
    for the tests of the relay alone."""
    from sqlalchemy import text

    from shared.db import make_engine
    from shared.kernel_ddl import kernel_tables, outbox_bulk_ddl, outbox_parking_ddl

    engine = make_engine(db_url, pool_size=pool_size)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        for ddl in [*kernel_tables(schema), *outbox_parking_ddl(schema), *outbox_bulk_ddl(schema)]:
            await conn.execute(text(ddl))
    try:
        yield engine
    finally:
        await engine.dispose()
