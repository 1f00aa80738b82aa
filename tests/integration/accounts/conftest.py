"""Fixtures of the accounts tests (the harness is in ``tests.integration.support.accounts``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.support.accounts import Accounts, serve_accounts
from tests.support import create_database


@pytest.fixture
async def accounts(db_url: str) -> AsyncIterator[Accounts]:
    """The service on a fresh database of its own."""
    async with serve_accounts(db_url) as service:
        yield service


@pytest.fixture(scope="module")
async def module_accounts(pg_admin_url: str) -> AsyncIterator[Accounts]:
    """One service and database for a whole module: for batteries that must store nothing."""
    async with serve_accounts(await create_database(pg_admin_url)) as service:
        yield service
