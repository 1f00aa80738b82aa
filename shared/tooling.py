"""Helpers for command-line tools that work on one service's database directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import embedded_postgres_url, make_engine, migrate
from shared.settings import Settings, get_settings


@asynccontextmanager
async def service_engine(
    service: str, settings: Settings | None = None, *, run_migrations: bool = True
) -> AsyncIterator[AsyncEngine]:
    """An engine on the service's database (configured URL, or the embedded server)."""
    settings = settings or get_settings()
    url = settings.database_url_for(service) or await asyncio.to_thread(
        embedded_postgres_url, settings.data_dir
    )
    engine = make_engine(url, pool_size=4)
    try:
        if run_migrations:
            await migrate(engine, service)
        yield engine
    finally:
        await engine.dispose()
