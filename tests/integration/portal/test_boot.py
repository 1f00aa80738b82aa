"""The all-in-one server runs the people's pages beside the four services, in a schema of
their own that holds sessions and nothing of a person's."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ila.registry import everything
from tests.support import running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_the_portal_starts_with_the_services_in_its_own_schema(db_url: str) -> None:
    settings = settings_for(db_url)
    async with running_app(everything(), settings, run_jobs=False) as (app, client):
        assert set(app.state.runtimes) == {"accounts", "ledger", "catalogue", "payments", "portal"}
        assert (await client.get("/readyz")).status_code == 200
        async with app.state.runtimes["portal"].sessions() as session:
            columns = set(
                await session.scalars(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = 'portal' AND table_name = 'sessions'"
                    )
                )
            )
        assert columns == {
            "session_id",
            "account_id",
            "csrf_secret",
            "data",
            "created_at",
            "expires_at",
        }
