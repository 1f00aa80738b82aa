"""Fifty providers enrol the same learner at once and the learner confirms them all at once:
the account is never overdrawn, and what payments calls covered is what the ledger holds."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.support.payments import World
from tests.support import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CREDIT = 1_000_000
PRICE = 70_000


async def test_fifty_providers_racing_on_one_learners_credit(world: World) -> None:
    account = await world.account(credit=CREDIT)  # unemployed: no participation fee
    providers = [f"race-{i:02d}" for i in range(50)]
    courses = [await world.course(p, price=PRICE) for p in providers]
    proposals = await asyncio.gather(
        *(world.propose(p, account, c) for p, c in zip(providers, courses, strict=True))
    )
    assert all(r.status_code == 202 for r in proposals), [r.text for r in proposals]
    ids = [r.json()["enrolment_id"] for r in proposals]
    confirmations = await asyncio.gather(
        *(world.confirm(account, e, accept_co_payment=(i % 3 == 0)) for i, e in enumerate(ids))
    )
    assert all(r.status_code == 202 for r in confirmations), [r.text for r in confirmations]
    final = [await world.settled(e) for e in ids]
    confirmed = [e for e in final if e["status"] == "confirmed"]
    covered = sum(e["covered"] for e in confirmed)
    assert covered <= CREDIT
    assert len(confirmed) >= CREDIT // PRICE
    assert all(0 < e["covered"] <= PRICE for e in confirmed)
    assert all(e["co_payment"] == PRICE - e["covered"] for e in confirmed)
    # the refused ones were refused for lack of credit, nothing else
    assert {e["reason"] for e in final if e["status"] != "confirmed"} <= {"insufficient_credit"}
    balance = await eventually(lambda: world.balance(account), lambda b: b["reserved"] == covered)
    assert balance["available"] >= 0
    assert balance["available"] + balance["reserved"] == CREDIT
    audit = await world.c.post("/v1/ledger/audit/verify", headers=world.auditor)
    assert audit.json()["ok"], audit.text
