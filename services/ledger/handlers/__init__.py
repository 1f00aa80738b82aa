"""The ledger's use cases: a command and a :class:`Context` in, events appended and staged,
all inside the caller's transaction (handlers never commit). Split by concern:

- :mod:`.wallets`: the wallet use cases (load, decide, append, project, stage);
- :mod:`.allocation`: the yearly allocation run, resumable, and its job loop;
- :mod:`.sweeps`: expiry as events (lots and reservations past their date);
- :mod:`.proposals`: the four-eyes actions (policy, allocation, reversal).

A route, a consumer or a job builds one context per transaction with
:meth:`Ledger.context`; who may ask is checked before a handler runs (see
:mod:`services.ledger.deps`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import WalletState, replay
from services.ledger.store import events as event_store
from services.ledger.store.events import Head
from shared.clock import Clock
from shared.outbox import EventContext, Outbox
from shared.usecase import UseCaseContext


class StateCache:
    """The wallet states this process computed last, by account and the head they folded
    to: a state is immutable and the head's hash names exactly the events it folded."""

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

    async def states(
        self,
        session: AsyncSession,
        heads: Mapping[uuid.UUID, Head],
        *,
        strict: bool = True,
        pause_every: int = 0,
    ) -> dict[uuid.UUID, WalletState]:
        """Each wallet's state at its head in ``heads``, read in one statement for all:

        - the cached state, when the cache holds that head;
        - else the cached state of an earlier head folded on with only the events after it
          (another process appended meanwhile), when they continue its chain;
        - else the whole stream replayed.

        What is read must end at the head: a stream that does not raises (``strict``, read
        under the wallets' locks) or is left out (read ahead without locks, where a wallet
        may change meanwhile). With ``pause_every``, the event loop runs other tasks after
        that many streams were folded."""
        out: dict[uuid.UUID, WalletState] = {}
        earlier: dict[uuid.UUID, tuple[Head, WalletState] | None] = {}
        for account_id, head in heads.items():
            hit = self._states.get(account_id)
            if hit is not None and hit[0] == head:
                self._states.move_to_end(account_id)
                out[account_id] = hit[1]
            else:
                # a cached head of a transaction that rolled back is no start: its events
                # are not the stream's, and the first event read does not continue it
                earlier[account_id] = hit if hit and hit[0].version < head.version else None
        after = {a: hit[0].version if hit else 0 for a, hit in earlier.items()}
        again: list[uuid.UUID] = []
        streams = await event_store.load_streams_after(session, after)
        for i, (account_id, rows) in enumerate(streams.items(), 1):
            if pause_every and i % pause_every == 0:
                await asyncio.sleep(0)
            start = earlier[account_id]
            if start is not None and (not rows or rows[0].prev_hash != start[0].hash):
                again.append(account_id)
                continue
            self._fold(out, account_id, heads[account_id], rows, start, strict)
        if again:
            whole = await event_store.load_streams_after(session, dict.fromkeys(again, 0))
            for account_id, rows in whole.items():
                self._fold(out, account_id, heads[account_id], rows, None, strict)
        return out

    def _fold(
        self,
        out: dict[uuid.UUID, WalletState],
        account_id: uuid.UUID,
        head: Head,
        rows: Sequence[event_store.EventRow],
        start: tuple[Head, WalletState] | None,
        strict: bool,
    ) -> None:
        if not rows or rows[-1].hash != head.hash or rows[-1].version != head.version:
            if strict:
                raise RuntimeError(f"wallet {account_id} projection disagrees with its stream")
            return
        state = replay((r.payload() for r in rows), start[1] if start else None)
        self.put(account_id, head, state)
        out[account_id] = state


@dataclass(frozen=True)
class Context(UseCaseContext[None]):
    """A ledger use case's context (see shared.usecase; the ledger has no rules to
    configure), with the cache of wallet states it loads through."""

    cache: StateCache


@dataclass(frozen=True)
class Ledger:
    """What every use case needs: where events go, the clock, and the cache of states."""

    outbox: Outbox
    clock: Clock = field(default_factory=Clock)
    cache: StateCache = field(default_factory=StateCache)

    def context(
        self, session: AsyncSession, events: EventContext, *, now: datetime | None = None
    ) -> Context:
        """The context of one use case in ``session``'s transaction, happening ``now``
        (by default, the clock's now)."""
        when = now or self.clock.now()
        return Context(session, self.outbox, None, when, events, self.cache)


__all__ = ["Context", "Ledger", "StateCache"]
