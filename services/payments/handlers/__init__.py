"""Payments use cases: a command (or another service's event, or the record it is about)
and a :class:`Context` in; load, decide (:mod:`services.payments.domain`), store
(:mod:`services.payments.store`) and stage events, all inside the caller's transaction
(handlers never commit). Split by concern: :mod:`.enrolments`, :mod:`.saga` (the ledger's
answers), :mod:`.claims`, :mod:`.attestation`, :mod:`.holds` (four-eyes releases),
:mod:`.payees`, :mod:`.payouts`, :mod:`.leave` (paid training leave), and :mod:`.jobs` (the
background sweeps).

A route, a consumer or a job builds one context per transaction with
:meth:`Payments.context`; who may ask is checked before a handler runs (see
:mod:`services.payments.deps`)."""

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
from shared.usecase import UseCaseContext

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")


@dataclass(frozen=True)
class Context(UseCaseContext[PaymentsConfig]):
    """A payments use case's context (see shared.usecase), able to store a decision."""

    async def apply(self, before: S, decided: tuple[S, Sequence[Event]]) -> S:
        """Store what a decision changed (from ``before``) and stage its events."""
        after, events = decided
        await rows.save(self.session, before, after)
        await self.emit(*events)
        return after


@dataclass(frozen=True)
class Payments:
    """What every use case needs: where events go, the rules, and the clock."""

    outbox: Outbox
    config: PaymentsConfig = field(default_factory=PaymentsConfig)
    clock: Clock = field(default_factory=Clock)

    def context(self, session: AsyncSession, events: EventContext) -> Context:
        """The context of one use case in ``session``'s transaction, happening now."""
        return Context(session, self.outbox, self.config, self.clock.now(), events)
