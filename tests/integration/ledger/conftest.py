from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.support.ledger import Api, ledger_api


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    async with ledger_api(db_url) as a:
        yield a
