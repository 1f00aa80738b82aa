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

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import WalletState
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
