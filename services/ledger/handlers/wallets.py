"""The wallet use cases: load a wallet, decide, append (chained), project, stage the events
for the ``ledger`` topic — all in the caller's transaction; and a wallet as it stood at a
past instant.

Loading replays the account's stream, or takes the state this process computed last time
when the locked head (version and hash) still matches it: a state is immutable and the
hash names exactly the events it folded.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import CaptureReservation, Command, ReserveCredits
from services.ledger.domain import WalletState, decide, evolve, replay
from services.ledger.domain.errors import LedgerError
from services.ledger.domain.reservations import capture_refused, reservation_refused
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.events import Head
from shared.clock import Clock
from shared.events import Envelope
from shared.events.ledger import LedgerEvent
from shared.outbox import EventContext, Outbox


class StateCache:
    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._states: OrderedDict[uuid.UUID, tuple[Head, WalletState]] = OrderedDict()

    def get(self, account_id: uuid.UUID, head: Head) -> WalletState | None:
        hit = self._states.get(account_id)
        if hit is None or hit[0] != head:
            return None
        self._states.move_to_end(account_id)
        return hit[1]

    def put(self, account_id: uuid.UUID, head: Head, state: WalletState) -> None:
        self._states[account_id] = (head, state)
        self._states.move_to_end(account_id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)


@dataclass(frozen=True)
class Outcome:
    events: list[LedgerEvent]
    state: WalletState


class Ledger:
    """The wallet use cases; ``clock`` says when a decision is made unless the caller does."""

    def __init__(
        self, outbox: Outbox, clock: Clock | None = None, cache: StateCache | None = None
    ) -> None:
        self.outbox = outbox
        self.clock = clock or Clock()
        self.cache = cache or StateCache()

    async def load(
        self, session: AsyncSession, account_id: uuid.UUID
    ) -> tuple[WalletState, Head | None]:
        """The wallet's current state, its row locked until the transaction ends."""
        head = await event_store.lock_head(session, account_id)
        if head is None:
            return WalletState(), None
        cached = self.cache.get(account_id, head)
        if cached is not None:
            return cached, head
        rows = await event_store.load_stream(session, account_id)
        state = replay(r.payload() for r in rows)
        if rows and rows[-1].hash != head.hash:
            raise RuntimeError(f"wallet {account_id} projection disagrees with its stream")
        self.cache.put(account_id, head, state)
        return state, head

    async def state_at(
        self, session: AsyncSession, account_id: uuid.UUID, instant: datetime
    ) -> WalletState | None:
        """The wallet as its events left it at ``instant``; None when there is no wallet."""
        rows = await event_store.load_stream(session, account_id, upto=instant)
        if not rows and await projections.wallet(session, account_id) is None:
            return None
        return replay(r.payload() for r in rows)

    async def execute(
        self,
        session: AsyncSession,
        command: Command,
        ctx: EventContext,
        *,
        now: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        now = now or self.clock.now()
        state, head = await self.load(session, command.account_id)
        events = decide(state, command, now)
        if not events:
            return Outcome([], state)
        after = await self.append(
            session,
            command.account_id,
            state,
            head,
            events,
            ctx,
            now=now,
            idempotency_key=idempotency_key,
        )
        return Outcome(events, after)

    async def refuse(
        self,
        session: AsyncSession,
        command: Command,
        error: LedgerError,
        ctx: EventContext,
        *,
        now: datetime | None = None,
    ) -> Outcome:
        """Answer a reservation or a capture that ``decide`` refused with ``error``: the
        refusal is an event (``ReservationRejected``, ``CaptureRejected``), so the service
        that asked hears of it. Any other command's error is raised again."""
        now = now or self.clock.now()
        state, head = await self.load(session, command.account_id)
        event: LedgerEvent
        if isinstance(command, CaptureReservation):
            event = capture_refused(state, command, error, now)
        elif isinstance(command, ReserveCredits):
            event = reservation_refused(state, command, error, now)
        else:
            raise error
        after = await self.append(session, command.account_id, state, head, [event], ctx, now=now)
        return Outcome([event], after)

    async def append(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        state: WalletState,
        head: Head | None,
        events: Sequence[LedgerEvent],
        ctx: EventContext,
        *,
        now: datetime,
        idempotency_key: str | None = None,
    ) -> WalletState:
        after = state
        for event in events:
            after = evolve(after, event)
        envelopes = [self.outbox.envelope(e, ctx) for e in events]
        rows = event_store.build_rows(account_id, head, envelopes, now, idempotency_key)
        await event_store.insert_events(session, rows)
        new_head = Head(after.version, rows[-1]["hash"])
        await projections.save_projection(session, state, after, new_head.hash, now)
        await self.outbox.add_envelopes(session, envelopes)
        self.cache.put(account_id, new_head, after)
        return after

    async def append_many(
        self,
        session: AsyncSession,
        batch: Sequence[tuple[WalletState, Head | None, Sequence[LedgerEvent]]],
        ctx: EventContext,
        *,
        now: datetime,
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
            after = state
            for event in events:
                after = evolve(after, event)
            envelopes = [self.outbox.envelope(e, ctx) for e in events]
            rows = event_store.build_rows(account_id, head, envelopes, now)
            all_rows += rows
            all_envelopes += envelopes
            new_head = Head(after.version, str(rows[-1]["hash"]))
            changed.append((state, after, new_head.hash))
            heads.append((account_id, new_head, after))
        await event_store.insert_events(session, all_rows)
        await projections.save_projections_bulk(session, changed, now)
        await self.outbox.add_envelopes(session, all_envelopes)
        for account_id, new_head, after in heads:
            self.cache.put(account_id, new_head, after)
        return len(all_rows)
