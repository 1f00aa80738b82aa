"""Fixtures of the payments tests (the harness, ``World``, is in
``tests.integration.support.payments``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ila.registry import definition
from services.payments.config import PaymentsConfig
from services.payments.main import definition as payments_definition
from shared.clock import Clock
from tests.integration.support.payments import World
from tests.support import migrated_template, running_app, settings_for


@pytest.fixture
def payments_config() -> PaymentsConfig:
    return PaymentsConfig()


@pytest.fixture
async def world(db_url: str, payments_config: PaymentsConfig) -> AsyncIterator[World]:
    settings = settings_for(db_url)
    clock = Clock()
    definitions = [
        definition("accounts"),
        definition("ledger"),
        payments_definition(payments_config, clock),
    ]
    async with running_app(definitions, settings, run_jobs=False) as (app, client):
        yield World(app, client, settings, clock)


@pytest.fixture(scope="module")
def template(pg_admin_url: str) -> str:
    """A migrated payments database that each example of a property test copies."""
    return migrated_template(pg_admin_url, "payments")
