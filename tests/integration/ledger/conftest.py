from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.db import migrate
from tests.integration.support.ledger import Api, Env, ledger_api


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    async with ledger_api(db_url) as a:
        yield a


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    e = Env(db_url)
    await migrate(e.engine, "ledger")
    yield e
    await e.engine.dispose()
