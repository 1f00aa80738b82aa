"""Helpers for the services' command-line tools that work on one service's database
directly (``ila accounts import``, ``ila audit ...``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from ila.postgres import database_url
from shared.db import make_engine, migrate
from shared.listen import announced
from shared.settings import Settings, get_settings


@asynccontextmanager
async def service_engine(
    service: str, settings: Settings | None = None, *, run_migrations: bool = True
) -> AsyncIterator[AsyncEngine]:
    """An engine on the service's database (configured URL, or the embedded server)."""
    settings = settings or get_settings()
    engine = make_engine(await database_url(settings, service), pool_size=4, **settings.db_tls())
    try:
        if run_migrations:
            await migrate(engine, service)
        yield engine
    finally:
        await announced(engine)
        await engine.dispose()
