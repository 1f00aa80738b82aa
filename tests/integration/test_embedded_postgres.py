"""The embedded server is set up for the whole system: connections for four services and
their pools, and shared buffers sized to the machine."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from ila.postgres import shared_buffers_mb
from shared.db import make_engine

pytestmark = pytest.mark.postgres


def test_shared_buffers_are_an_eighth_of_memory_between_the_default_and_2_gb() -> None:
    gib = 2**30
    assert shared_buffers_mb(512 * 2**20) == 128
    assert shared_buffers_mb(4 * gib) == 512
    assert shared_buffers_mb(24 * gib) == 2048
    assert shared_buffers_mb(256 * gib) == 2048


@pytest.mark.skipif(
    bool(os.environ.get("ILA_TEST_DATABASE_URL")), reason="the embedded server's settings"
)
async def test_the_embedded_server_runs_with_them(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            settings = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT name, setting::bigint * CASE unit WHEN '8kB' THEN 8192 "
                            "ELSE 1 END FROM pg_settings "
                            "WHERE name IN ('shared_buffers', 'max_connections')"
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert settings["shared_buffers"] == shared_buffers_mb() * 2**20
    assert settings["max_connections"] == 400
