"""A stream recorded with the first versions of the ledger's events (``ProfileNoted`` v1 with
need flags, ``WalletSuspended``/``WalletReinstated``/``CreditsGranted`` v1 with free-text
reasons) still loads,
takes new entries and verifies: reads go through the upcasters, the stored form (which the
hash chain covers) stays as it was written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from services.ledger.domain import replay
from services.ledger.store import batch as batch_store
from services.ledger.store import events as event_store
from services.ledger.store import projections
from shared.events import Envelope
from shared.events.ledger import CreditsGranted, ProfileNoted, WalletReinstated, WalletSuspended
from tests.integration.support.ledger import Api

pytestmark = pytest.mark.postgres

FREE_TEXT = "Ana lost her papers"


def v1(name: str, account_id: str, **data: Any) -> Envelope:
    """An envelope as the ledger wrote it when ``name`` was at version 1."""
    payload = {"account_id": account_id, "occurred_at": datetime.now(UTC).isoformat(), **data}
    return Envelope(
        source="/ila/ledger",
        type=f"ila.ledger.{name}.v1",
        subject=account_id,
        correlationid=uuid.uuid4(),
        actor="system:accounts",
        schemaversion=1,
        data=payload,
    )


async def test_a_stream_with_version_1_rows_loads_and_verifies(api: Api) -> None:
    account = await api.account()
    aid = uuid.UUID(account)
    old = [
        v1(
            "ProfileNoted",
            account,
            profile={
                "qualification_level": 3,
                "employment_status": "employed",
                "need_flags": ["disability"],
            },
        ),
        v1("WalletSuspended", account, reason=FREE_TEXT),
        v1("WalletReinstated", account, reason="papers back"),
        v1(
            "CreditsGranted",
            account,
            lot_id=str(uuid.uuid4()),
            amount=1_000,
            funder_id="region",
            reason=FREE_TEXT,
            kind="top_up",
        ),
    ]
    # appended as the ledger stored them then: chained rows and the projection they gave
    async with api.rt.uow() as session:
        head = await event_store.lock_head(session, aid)
        assert head is not None
        rows = await event_store.load_stream(session, aid)
        before = replay(r.payload() for r in rows)
        now = datetime.now(UTC)
        new = event_store.build_rows(aid, head, old, now)
        after = replay([*(r.payload() for r in rows), *(e.payload() for e in old)])
        wallets, lots, reservations = projections.changed_rows(
            [(before, after, str(new[-1]["hash"]))], now
        )
        await batch_store.write(session, '"ledger".outbox', new, wallets, lots, reservations, [])
        stored = await event_store.load_stream(session, aid)
    # the old rows read as the new versions
    typed = [r.payload() for r in stored[-4:]]
    assert isinstance(typed[0], ProfileNoted) and typed[0].profile.need_tier == "high"
    assert isinstance(typed[1], WalletSuspended) and typed[1].reason_code == "other"
    assert isinstance(typed[2], WalletReinstated) and typed[2].reason_code == "other"
    assert isinstance(typed[3], CreditsGranted) and typed[3].reason_code == "other"
    assert after.status == "open" and after.profile is not None

    # the wallet takes new entries (loading its stream from the database, not a cache)
    api.ledger.cache._states.clear()
    r = await api.grant(account, 5_000)
    assert r.status_code == 201, r.text
    assert (await api.balance(account))["available"] == 6_000
    # the stream still holds what was stored, and its hashes still verify
    entries = (
        await api.c.get(f"/v1/ledger/accounts/{account}/entries", headers=api.auditor)
    ).json()["items"]
    suspended = [e for e in entries if e["type"] == "ila.ledger.WalletSuspended.v1"]
    assert [e["data"]["reason"] for e in suspended] == [FREE_TEXT]
    report = (await api.c.post("/v1/ledger/audit/verify", headers=api.auditor)).json()
    assert report["ok"], report["mismatches"]
    async with api.rt.sessions() as session:
        types = (
            await session.execute(
                text("SELECT type FROM ledger.events WHERE stream_id = :a ORDER BY version"),
                {"a": aid},
            )
        ).scalars()
        assert "ila.ledger.ProfileNoted.v1" in list(types)
