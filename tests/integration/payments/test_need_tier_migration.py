"""Migration 0009a on a database that already holds accounts: the read model keeps the need
tier alone, whether a row held the tier (as written since the accounts service sends tiers)
or the flags themselves (as written before)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.payments.store import read_models
from shared.db import make_sessionmaker, migrate

pytestmark = pytest.mark.postgres

ROWS = {
    # what the row held -> the tier it keeps
    "tier_high": (["high"], "high"),
    "tier_priority": (["priority"], "priority"),
    "flags_disability": (["single_parent", "disability"], "high"),
    "flags_other": (["rural_remote"], "priority"),
    "no_flags": ([], "standard"),
}


async def test_need_flags_become_the_need_tier(db_url: str) -> None:
    engine = create_async_engine(db_url)
    ids = {name: uuid.uuid4() for name in ROWS}
    try:
        await migrate(engine, "payments", "0008d")
        async with engine.begin() as conn:
            for name, (flags, _) in ROWS.items():
                await conn.execute(
                    text(
                        "INSERT INTO payments.accounts (account_id, agency_id, status, "
                        "employment_status, need_flags) VALUES (:a, 'pes-fr', 'active', "
                        "'employed', :f)"
                    ),
                    {"a": ids[name], "f": flags},
                )
        await migrate(engine, "payments")
        async with engine.connect() as conn:
            columns = set(
                (
                    await conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'payments' AND table_name = 'accounts'"
                        )
                    )
                ).scalars()
            )
        assert "need_flags" not in columns and "need_tier" in columns
        async with make_sessionmaker(engine)() as session:
            for name, (_, tier) in ROWS.items():
                view = await read_models.account(session, ids[name])
                assert view is not None and view.need_tier == tier, name
            # and the projection writes the tier it is sent
            fresh = uuid.uuid4()
            await read_models.upsert_account(
                session,
                fresh,
                agency_id="pes-fr",
                status="active",
                employment_status="employed",
                need_tier="priority",
            )
            view = await read_models.account(session, fresh)
            assert view is not None and view.need_tier == "priority"
    finally:
        await engine.dispose()
