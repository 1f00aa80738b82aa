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
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import Command
from services.ledger.domain import WalletState, decide, evolve, replay
from services.ledger.store import batch as batch_store
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.events import Head
from shared.clock import Clock
from shared.errors import DomainError
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


class Order(NamedTuple):
    """One command of a batch, with its context and the request's ``Idempotency-Key``."""

    command: Command
    ctx: EventContext
    idempotency_key: str | None = None


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

    async def execute_many(
        self,
        session: AsyncSession,
        orders: Sequence[Order | tuple[Command, EventContext]],
        *,
        now: datetime | None = None,
    ) -> list[Outcome | DomainError]:
        """Decide many commands together, in the caller's transaction, in the order given.

        The heads of every account named are locked in one statement, in account order (so
        two batches never deadlock); states come from the cache, misses replayed in one
        query. Commands for the same account fold through its state one after the other.
        A command the domain refuses is answered alone with its error and leaves the state
        as it was; the others are appended with one statement per table (events, wallets,
        lots, reservations, outbox), in the order given, each stream still chained.
        """
        now = now or self.clock.now()
        items = [Order(*o) for o in orders]
        states = await self._load_many(session, sorted({o.command.account_id for o in items}))
        before = dict(states)
        results: list[Outcome | DomainError] = []
        rows: list[dict[str, object]] = []
        envelopes: list[Envelope] = []
        for order in items:
            account_id = order.command.account_id
            state, head = states[account_id]
            try:
                events = decide(state, order.command, now)
            except DomainError as refused:
                results.append(refused)
                continue
            if not events:
                results.append(Outcome([], state))
                continue
            after = state
            for event in events:
                after = evolve(after, event)
            wrapped = [self.outbox.envelope(e, order.ctx) for e in events]
            built = event_store.build_rows(account_id, head, wrapped, now, order.idempotency_key)
            rows += built
            envelopes += wrapped
            states[account_id] = (after, Head(after.version, str(built[-1]["hash"])))
            results.append(Outcome(events, after))
        changed = [
            (before[a][0], after, head.hash)
            for a, (after, head) in states.items()
            if head is not None and after is not before[a][0]
        ]
        if rows:
            wallets, lots, reservations = projections.changed_rows(changed, now)
            outbox = self.outbox.rows(envelopes)
            table = f'"{self.outbox.service}".outbox'
            await batch_store.write(session, table, rows, wallets, lots, reservations, outbox)
            self.outbox.staged(session)
            for _, after, head_hash in changed:
                assert after.account_id is not None
                self.cache.put(after.account_id, Head(after.version, head_hash), after)
        return results

    async def _load_many(
        self, session: AsyncSession, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[WalletState, Head | None]]:
        """Each account's state and head, every head locked (``account_ids`` sorted)."""
        heads = await event_store.lock_heads(session, account_ids)
        out: dict[uuid.UUID, tuple[WalletState, Head | None]] = {}
        misses = []
        for account_id in account_ids:
            head = heads.get(account_id)
            cached = self.cache.get(account_id, head) if head is not None else WalletState()
            if cached is None:
                misses.append(account_id)
            else:
                out[account_id] = (cached, head)
        for account_id, stream in (await event_store.load_streams(session, misses)).items():
            head = heads[account_id]
            state = replay(r.payload() for r in stream)
            if not stream or stream[-1].hash != head.hash:
                raise RuntimeError(f"wallet {account_id} projection disagrees with its stream")
            self.cache.put(account_id, head, state)
            out[account_id] = (state, head)
        return out
