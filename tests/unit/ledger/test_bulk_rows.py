"""The bulk append (allocation run) builds its rows without ``Envelope`` or ``build_rows``:
they must be the rows those would write — the same canonical form and chain, the same
outbox body, the same projection rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ledger.domain import EntitlementPolicy, replay
from services.ledger.domain.policy import allocate_folded
from services.ledger.handlers import Ledger
from services.ledger.handlers.bulk import Columns
from services.ledger.store import batch as batch_store
from services.ledger.store import projections
from services.ledger.store.chain import GENESIS, canonical_bytes, chain_hash
from services.ledger.store.events import Head
from shared.events import Envelope
from shared.events.ledger import ProfileNoted, WalletOpened, WalletProfile
from shared.outbox import EventContext, Outbox
from tests.unit.support.ledger import T0, uid


def _rows(rows: list[tuple[Any, ...]], types: dict[str, str]) -> list[dict[str, Any]]:
    return [dict(zip(types, values, strict=True)) for values in rows]


@pytest.mark.parametrize("pepper", [None, "a-pepper"])
@pytest.mark.parametrize("actor", ["admin:alice", "admin:Zoë", None])
def test_bulk_rows_are_what_the_envelope_path_writes(pepper: str | None, actor: str | None) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    ledger = Ledger(Outbox("ledger", actor_pepper=pepper))
    ctx = ledger.context(None, EventContext(correlation_id=uid("run"), actor=actor), now=now)  # type: ignore[arg-type]
    policy = EntitlementPolicy(year=2030, lot_lifetime_years=3, supplements={"unemployed": 7})
    columns = Columns(ctx)
    befores = []
    for i, profile in enumerate(
        [None, WalletProfile(qualification_level=2, employment_status="unemployed")]
    ):
        account = uid(f"account-{i}")
        stream = [WalletOpened(account_id=account, occurred_at=T0)]
        if profile is not None:
            stream.append(ProfileNoted(account_id=account, occurred_at=T0, profile=profile))
        state = replay(stream)
        head = Head(state.version, f"{i + 1:064x}")
        events, after = allocate_folded(
            state, policy, lot_id=uid(f"lot-{i}"), now=now, allocation_id=uid("run")
        )
        assert events
        columns.add(state, head, events, after)
        befores.append((state, head, events, after))

    rows = _rows(columns.events, batch_store.EVENT_TYPES)
    outbox = _rows(columns.outbox, batch_store.OUTBOX_TYPES)
    assert len(rows) == len(outbox) == 2
    for row, box, (_, head, events, _) in zip(rows, outbox, befores, strict=True):
        (event,) = events
        envelope = Envelope.from_bytes(box["body"])
        # the outbox body is the envelope the relay would have sent, byte for byte when ASCII
        expected = ledger.outbox.envelope(event, ctx.events).model_copy(
            update={"id": envelope.id, "time": envelope.time}
        )
        assert envelope == expected
        if actor is None or actor.isascii() or pepper is not None:
            assert box["body"] == expected.to_bytes()
        (staged,) = ledger.outbox.rows([expected])
        assert box == {**staged, "body": box["body"]}
        # the event row is build_rows' row for that envelope
        (built,) = projections_free_build(head, envelope, now)
        assert row == {**built, "data": row["data"], "metadata": row["metadata"]}
        assert json.loads(row["data"]) == json.loads(str(built["data"]))
        assert json.loads(row["metadata"]) == json.loads(str(built["metadata"]))
        assert row["hash"] == chain_hash(
            head.hash,
            canonical_bytes(
                event_id=row["event_id"],
                stream_id=row["stream_id"],
                version=row["version"],
                type=row["type"],
                schema_version=row["schema_version"],
                recorded_at=now,
                data=json.loads(row["data"]),
                metadata=json.loads(row["metadata"]),
            ),
        )
        assert row["prev_hash"] == head.hash != GENESIS
    # the projection rows are changed_rows' rows
    wallets, lots, reservations = projections.changed_rows(
        [(s, a, r["hash"]) for (s, _, _, a), r in zip(befores, rows, strict=True)], now
    )
    fast_wallets = [dict(zip(projections.WALLET_COLUMNS, w, strict=True)) for w in columns.wallets]
    for fast, slow in zip(fast_wallets, wallets, strict=True):
        assert (fast["profile"] is None) == (slow["profile"] is None)
        if slow["profile"] is not None:
            assert json.loads(fast["profile"]) == json.loads(slow["profile"])
        slow_years = "{" + ",".join(str(y) for y in slow["years_granted"]) + "}"
        assert fast == {**slow, "profile": fast["profile"], "years_granted": slow_years}
    assert columns.lots == lots and columns.reservations == reservations == []


def projections_free_build(head: Head, envelope: Envelope, now: datetime) -> list[dict[str, Any]]:
    from services.ledger.store.events import build_rows

    return build_rows(uuid.UUID(envelope.subject), head, [envelope], now)
