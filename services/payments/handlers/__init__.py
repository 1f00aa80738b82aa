"""Payments use cases: a command (or another service's event) and a context in; load,
decide (:mod:`services.payments.domain`), store (:mod:`services.payments.store`) and stage
events, all inside the caller's transaction. Split by concern: :mod:`.enrolments`,
:mod:`.saga` (the ledger's answers), :mod:`.claims`, :mod:`.attestation`, :mod:`.holds`
(four-eyes releases), :mod:`.payees`, :mod:`.payouts`, and :mod:`.jobs` (the background
sweeps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.config import PaymentsConfig
from services.payments.store import rows
from shared.clock import Clock
from shared.events.base import Event
from shared.outbox import EventContext, Outbox

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")


@dataclass(frozen=True)
class Payments:
    """What every use case needs: where events go, the rules, and the clock."""

    outbox: Outbox
    config: PaymentsConfig = field(default_factory=PaymentsConfig)
    clock: Clock = field(default_factory=Clock)

    async def apply(
        self,
        session: AsyncSession,
        before: S,
        decided: tuple[S, Sequence[Event]],
        ctx: EventContext,
    ) -> S:
        """Store what a decision changed (from ``before``) and stage its events."""
        after, events = decided
        await rows.save(session, before, after)
        await self.outbox.add(session, events, ctx)
        return after
