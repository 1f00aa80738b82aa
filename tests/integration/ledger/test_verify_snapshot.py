"""`verify` on a ledger that keeps working: a grant committed between verify's read of the
projections and its read of the events is in neither (one snapshot), so it cannot show as
a mismatch; the next verify sees it, and a real difference is still reported."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from services.ledger.audit import verify
from services.ledger.commands import GrantCredits
from services.ledger.handlers.wallets import execute
from services.ledger.store import audit as audit_reads
from shared.db import transaction
from shared.outbox import EventContext
from tests.integration.support.ledger import Env, open_wallet

pytestmark = pytest.mark.postgres


async def test_an_append_during_verify_is_not_a_mismatch(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = [await open_wallet(env, 100) for _ in range(3)]
    read_projections = audit_reads.verify_projections
    appended: list[uuid.UUID] = []

    async def then_append(conn: Any) -> Any:
        found = await read_projections(conn)
        if not appended:  # another caller's grant commits right after the projections' read
            async with transaction(env.sessions) as s:
                await execute(
                    GrantCredits(
                        account_id=accounts[0],
                        lot_id=uuid.uuid4(),
                        amount=25,
                        funder_id="state",
                        reason_code="top_up",
                    ),
                    env.ledger.context(s, EventContext.new("test")),
                )
            appended.append(accounts[0])
        return found

    monkeypatch.setattr(audit_reads, "verify_projections", then_append)
    async with env.sessions() as s:
        during = await verify(s, workers=0)
    assert appended and during.ok, during.mismatches
    async with env.sessions() as s:
        after = await verify(s, workers=0)
    assert after.ok and after.events == during.events + 1

    # a real difference is still found
    async with transaction(env.sessions) as s:
        await s.execute(
            text("UPDATE ledger.wallets SET available = available + 1 WHERE account_id = :a"),
            {"a": accounts[1]},
        )
    async with env.sessions() as s:
        tampered = await verify(s, workers=0)
    assert not tampered.ok
