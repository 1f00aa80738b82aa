"""Appends (the allocation run, group commits, consumers' batches) build their rows without
``Envelope`` or ``build_rows``: they must be the rows those would write — the same canonical
form and chain, the same outbox body, the same projection rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.ledger.commands import CaptureReservation, ReserveCredits
from services.ledger.domain import EntitlementPolicy, replay
from services.ledger.domain.decide import decide_folded
from services.ledger.domain.policy import allocate_folded
from services.ledger.domain.statutory import StatutoryTerms, statutory_grant
from services.ledger.handlers import Ledger
from services.ledger.handlers.allocation import LOT_NAMESPACE, statutory_lot_id
from services.ledger.handlers.bulk import Columns, new_ids
from services.ledger.store import batch as batch_store
from services.ledger.store import projections
from services.ledger.store.chain import GENESIS, canonical_bytes, chain_hash
from services.ledger.store.events import Head, build_rows
from shared.events import Envelope
from shared.events.ledger import LedgerEvent, ProfileNoted, WalletOpened, WalletProfile
from shared.outbox import EventContext, Outbox
from tests.unit.support.ledger import ACCOUNT, COURSE, T0, given, granted, opened, uid


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
        # the outbox body is the envelope the relay would have sent, byte for byte
        expected = ledger.outbox.envelope(event, ctx.events).model_copy(
            update={"id": envelope.id, "time": envelope.time}
        )
        assert envelope == expected
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


@pytest.mark.parametrize("pepper", [None, "a-pepper"])
@pytest.mark.parametrize("actor", ["admin:alice", 'admin:"Zoë"\\', None])
@pytest.mark.parametrize("lifetime", [None, 3])
@pytest.mark.parametrize("allocation", [uid("run"), None])
def test_a_statutory_grant_written_from_its_numbers_is_the_event_written(
    pepper: str | None,
    actor: str | None,
    lifetime: int | None,
    allocation: uuid.UUID | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``add_grant`` writes what ``add`` writes for the ``CreditsGranted`` the general path
    decides: the same row (the stored data as the same JSON), the same canonical bytes and
    hash, the same outbox body byte for byte, the same wallet and lot rows."""
    now = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    ledger = Ledger(Outbox("ledger", actor_pepper=pepper))
    ctx = ledger.context(None, EventContext(correlation_id=uid("corr"), actor=actor), now=now)  # type: ignore[arg-type]
    policy = EntitlementPolicy(
        year=2030, lot_lifetime_years=lifetime, supplements={"unemployed": 7}, funder_id="st.a:te"
    )
    terms = StatutoryTerms(policy)
    slow, fast = Columns(ctx), Columns(ctx)
    fast.sent = slow.sent  # one envelope time for both
    ids = new_ids(3)
    low = WalletProfile(qualification_level=2, employment_status="unemployed")
    given_ids = iter([uuid.UUID(i) for i in ids])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(given_ids))  # add's ids: the same
    for i, (profile, head) in enumerate(
        [
            (None, Head(1, "ef" * 32)),
            (low, Head(2, "a" * 64)),
            (WalletProfile(qualification_level=7, employment_status="employed"), Head(1, "c" * 64)),
        ]
    ):
        account = uid(f"account-{i}")
        stream = [WalletOpened(account_id=account, occurred_at=T0)]
        if profile is not None:
            stream.append(ProfileNoted(account_id=account, occurred_at=T0, profile=profile))
        state = replay(stream[: head.version])
        lot_id = statutory_lot_id(account, 2030)
        events, after = allocate_folded(
            state, policy, lot_id=lot_id, now=now, allocation_id=allocation
        )
        grant = statutory_grant(state, terms, lot_id=lot_id, now=now, allocation_id=allocation)
        assert grant is not None and grant[1] == after
        slow.add(state, head, [event.model_copy() for event in events], after)
        fast.add_grant(head, lot_id, grant[0], grant[1], terms, allocation, ids[i])
    for row, fast_row in zip(slow.events, fast.events, strict=True):
        slow_row = dict(zip(batch_store.EVENT_TYPES, row, strict=True))
        got = dict(zip(batch_store.EVENT_TYPES, fast_row, strict=True))
        assert uuid.UUID(got["event_id"]) == slow_row["event_id"]
        assert json.loads(got["data"]) == json.loads(slow_row["data"])
        assert got["metadata"] == slow_row["metadata"]
        rest = ("stream_id", "version", "type", "schema_version", "recorded_at", "prev_hash")
        assert [got[c] for c in rest] == [slow_row[c] for c in rest]
        assert got["hash"] == slow_row["hash"]
        # the hash is the chain's, of the canonical form an auditor recomputes
        assert got["hash"] == chain_hash(
            got["prev_hash"],
            canonical_bytes(
                event_id=uuid.UUID(got["event_id"]),
                stream_id=got["stream_id"],
                version=got["version"],
                type=got["type"],
                schema_version=got["schema_version"],
                recorded_at=now,
                data=json.loads(got["data"]),
                metadata=json.loads(got["metadata"]),
            ),
        )
    for slow_box, fast_box, fast_row in zip(slow.outbox, fast.outbox, fast.events, strict=True):
        envelope = Envelope.from_bytes(fast_box[4])
        assert str(envelope.id) == fast_row[0] == fast_box[0]
        assert envelope.model_dump() == {
            **Envelope.from_bytes(slow_box[4]).model_dump(),
            "id": envelope.id,
        }
        assert fast_box[1:4] == slow_box[1:4]
        # byte for byte the body orjson would write, keys sorted
        assert fast_box[4] == orjson.dumps(orjson.loads(fast_box[4]), option=orjson.OPT_SORT_KEYS)
    assert fast.wallets == slow.wallets
    assert fast.lots == slow.lots and fast.reservations == slow.reservations == []
    assert fast.changed == slow.changed


def test_the_statutory_lot_id_is_uuid5_of_account_and_year() -> None:
    for i in range(200):
        account = uuid.uuid4() if i % 2 else uid(f"account-{i}")
        for year in (2000, 2030, 2200):
            lot_id = statutory_lot_id(account, year)
            expected = uuid.uuid5(LOT_NAMESPACE, f"{account}:{year}")
            assert lot_id == expected and str(lot_id) == str(expected)
            assert hash(lot_id) == hash(expected) and lot_id.version == 5
            assert lot_id.is_safe == expected.is_safe


def test_new_ids_are_random_version_4_uuids() -> None:
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("pepper", [None, "a-pepper"])
@pytest.mark.parametrize("key", [None, "key-1"])
def test_a_commands_events_chained_with_its_own_cause_are_what_the_envelope_path_writes(
    pepper: str | None, key: str | None
) -> None:
    # a reservation then a capture decided together for one wallet (as a group commit does),
    # each with the event that caused it, the capture with its request's key
    now = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    ledger = Ledger(Outbox("ledger", actor_pepper=pepper))
    ctx = ledger.context(None, EventContext(correlation_id=uid("batch"), actor="svc"), now=now)  # type: ignore[arg-type]
    state = given(opened(), granted("lot", 50_000))
    head = Head(state.version, f"{7:064x}")
    reserve = ReserveCredits(
        account_id=ACCOUNT,
        reservation_id=uid("r"),
        enrolment_id=uid("e"),
        amount=30_000,
        course=COURSE,
    )
    capture = CaptureReservation(account_id=ACCOUNT, reservation_id=uid("r"), amount=20_000)
    causes = [
        EventContext(correlation_id=uid("c1"), causation_id=uid("x1"), actor="learner:Zoë"),
        EventContext(correlation_id=uid("c2"), causation_id=uid("x2"), actor="provider:p1"),
    ]
    columns = Columns(ctx)
    decided: list[tuple[Head, LedgerEvent, EventContext, str | None]] = []
    after, chained = state, head
    for command, cause, request_key in zip((reserve, capture), causes, (None, key), strict=True):
        events, after_command = decide_folded(after, command, now)
        before_head = chained
        chained = columns.chain(chained, events, cause, request_key)
        assert chained.version == after_command.version == before_head.version + len(events)
        decided += [(before_head, e, cause, request_key) for e in events]
        after = after_command
    columns.project(state, after, chained)

    rows = _rows(columns.events, batch_store.EVENT_TYPES)
    outbox = _rows(columns.outbox, batch_store.OUTBOX_TYPES)
    assert len(rows) == len(outbox) == len(decided) >= 2
    prev = head
    for row, box, (_, event, cause, request_key) in zip(rows, outbox, decided, strict=True):
        envelope = Envelope.from_bytes(box["body"])
        expected = ledger.outbox.envelope(event, cause).model_copy(
            update={"id": envelope.id, "time": envelope.time}
        )
        assert envelope == expected  # the cause's correlation, causation and actor
        (built,) = build_rows(ACCOUNT, prev, [envelope], now, request_key)
        assert row == {**built, "data": row["data"], "metadata": row["metadata"]}
        assert json.loads(row["data"]) == json.loads(str(built["data"]))
        assert json.loads(row["metadata"]) == json.loads(str(built["metadata"]))
        assert json.loads(row["metadata"])["idempotency_key"] == request_key
        prev = Head(row["version"], row["hash"])
    assert prev == chained
    # one wallet row for the batch, with the reservation's and the lot's rows as they end
    wallets, lots, reservations = projections.changed_rows([(state, after, chained.hash)], now)
    (fast,) = [dict(zip(projections.WALLET_COLUMNS, w, strict=True)) for w in columns.wallets]
    (slow,) = wallets
    slow_years = "{" + ",".join(str(y) for y in slow["years_granted"]) + "}"
    assert fast == {**slow, "years_granted": slow_years}
    assert columns.lots == lots and columns.reservations == reservations
    assert reservations[0]["captured"] == 20_000 and reservations[0]["status"] == "captured"
