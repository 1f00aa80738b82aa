"""The wallet use cases: load a wallet, decide, append (chained), project, stage the events
for the ``ledger`` topic — all in the caller's transaction; and a wallet as it stood at a
past instant.

Loading replays the account's stream, or takes the state this process computed last time
when the locked head (version and hash) still matches it (see :class:`StateCache`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import CaptureReservation, Command, ReserveCredits
from services.ledger.domain import WalletState, decide, evolve, replay
from services.ledger.domain.errors import LedgerError
from services.ledger.domain.reservations import capture_refused, reservation_refused
from services.ledger.handlers import Context
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.events import Head
from shared.events import Envelope
from shared.events.ledger import LedgerEvent


@dataclass(frozen=True)
class Outcome:
    events: list[LedgerEvent]
    state: WalletState


async def load(account_id: uuid.UUID, ctx: Context) -> tuple[WalletState, Head | None]:
    """The wallet's current state, its row locked until the transaction ends."""
    head = await event_store.lock_head(ctx.session, account_id)
    if head is None:
        return WalletState(), None
    cached = ctx.cache.get(account_id, head)
    if cached is not None:
        return cached, head
    rows = await event_store.load_stream(ctx.session, account_id)
    state = replay(r.payload() for r in rows)
    if rows and rows[-1].hash != head.hash:
        raise RuntimeError(f"wallet {account_id} projection disagrees with its stream")
    ctx.cache.put(account_id, head, state)
    return state, head


async def state_at(
    session: AsyncSession, account_id: uuid.UUID, instant: datetime
) -> WalletState | None:
    """The wallet as its events left it at ``instant``; None when there is no wallet."""
    rows = await event_store.load_stream(session, account_id, upto=instant)
    if not rows and await projections.wallet(session, account_id) is None:
        return None
    return replay(r.payload() for r in rows)


async def execute(command: Command, ctx: Context, *, idempotency_key: str | None = None) -> Outcome:
    """Decide ``command`` on the wallet as it stands, at the context's instant, and append
    what it decided (nothing when it refused)."""
    state, head = await load(command.account_id, ctx)
    events = decide(state, command, ctx.now)
    if not events:
        return Outcome([], state)
    after = await _append(command.account_id, state, head, events, ctx, idempotency_key)
    return Outcome(events, after)


async def refuse(command: Command, error: LedgerError, ctx: Context) -> Outcome:
    """Answer a reservation or a capture that ``decide`` refused with ``error``: the refusal
    is an event (``ReservationRejected``, ``CaptureRejected``), so the service that asked
    hears of it. Any other command's error is raised again."""
    state, head = await load(command.account_id, ctx)
    event: LedgerEvent
    if isinstance(command, CaptureReservation):
        event = capture_refused(state, command, error, ctx.now)
    elif isinstance(command, ReserveCredits):
        event = reservation_refused(state, command, error, ctx.now)
    else:
        raise error
    after = await _append(command.account_id, state, head, [event], ctx, None)
    return Outcome([event], after)


@dataclass(frozen=True)
class _Chained:
    """What appending ``events`` to one stream writes: the rows (each chained to the last),
    the envelopes to stage, the state after them and the new head."""

    rows: list[dict[str, object]]
    envelopes: list[Envelope]
    after: WalletState
    head: Head


def _chain(
    account_id: uuid.UUID,
    state: WalletState,
    head: Head | None,
    events: Sequence[LedgerEvent],
    ctx: Context,
    idempotency_key: str | None = None,
) -> _Chained:
    after = state
    for event in events:
        after = evolve(after, event)
    envelopes = [ctx.outbox.envelope(e, ctx.events) for e in events]
    rows = event_store.build_rows(account_id, head, envelopes, ctx.now, idempotency_key)
    return _Chained(rows, envelopes, after, Head(after.version, str(rows[-1]["hash"])))


async def _append(
    account_id: uuid.UUID,
    state: WalletState,
    head: Head | None,
    events: Sequence[LedgerEvent],
    ctx: Context,
    idempotency_key: str | None,
) -> WalletState:
    chained = _chain(account_id, state, head, events, ctx, idempotency_key)
    await event_store.insert_events(ctx.session, chained.rows)
    await projections.save_projection(ctx.session, state, chained.after, chained.head.hash, ctx.now)
    await ctx.outbox.add_envelopes(ctx.session, chained.envelopes)
    ctx.cache.put(account_id, chained.head, chained.after)
    return chained.after


async def append_many(
    batch: Sequence[tuple[WalletState, Head | None, Sequence[LedgerEvent]]], ctx: Context
) -> int:
    """Append to many streams in one round trip per table (the allocation run)."""
    all_rows: list[dict[str, object]] = []
    all_envelopes: list[Envelope] = []
    changed = []
    heads = []
    for state, head, events in batch:
        if not events:
            continue
        account_id = events[0].account_id
        chained = _chain(account_id, state, head, events, ctx)
        all_rows += chained.rows
        all_envelopes += chained.envelopes
        changed.append((state, chained.after, chained.head.hash))
        heads.append((account_id, chained.head, chained.after))
    await event_store.insert_events(ctx.session, all_rows)
    await projections.save_projections_bulk(ctx.session, changed, ctx.now)
    await ctx.outbox.add_envelopes(ctx.session, all_envelopes)
    for account_id, new_head, after in heads:
        ctx.cache.put(account_id, new_head, after)
    return len(all_rows)
