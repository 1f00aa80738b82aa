"""Events of other services that accounts keeps for its statistics: payments' confirmed
enrolments say that a learner trained in a year (and in which ISCED-F field); an enrolment
cancelled with nothing kept by the provider (no training given) counts no more.

Consecutive ledger lot moves, proposals and answers to them of a fetched batch (an
allocation's grants, the saga's proposals, reservations and captures) are applied together
(:func:`services.accounts.batched.apply_many`); the others one at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts import batched
from services.accounts.messages import Messenger, facts
from services.accounts.store import statistics
from shared.events import Envelope
from shared.events.payments import EnrolmentCancelled, EnrolmentConfirmed
from shared.inbox import EventConsumer


def register(consumer: EventConsumer, messenger: Messenger) -> None:
    """Register what accounts consumes: the facts its messages tell (see
    :mod:`services.accounts.messages.facts`), then the statistics' handlers; for an event
    both follow, the messages' handler runs first, in the same transaction."""
    facts.register(consumer, messenger)
    before = {
        kind: consumer.handlers.get(kind.cloudevent_type())
        for kind in (EnrolmentConfirmed, EnrolmentCancelled)
    }

    @consumer.on(EnrolmentConfirmed)
    async def confirmed(session: AsyncSession, env: Envelope, event: EnrolmentConfirmed) -> None:
        if (earlier := before[EnrolmentConfirmed]) is not None:
            await earlier(session, env, event)
        await statistics.record_training(
            session, event.enrolment_id, event.account_id, event.isced_field, env.time
        )

    @consumer.on(EnrolmentCancelled)
    async def cancelled(session: AsyncSession, env: Envelope, event: EnrolmentCancelled) -> None:
        if (earlier := before[EnrolmentCancelled]) is not None:
            await earlier(session, env, event)
        if event.provider_share == 0:
            await statistics.forget_training(session, event.enrolment_id)

    @consumer.on_batch(*batched.BATCHED)
    async def applied_together(
        session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
    ) -> list[BaseException | None]:
        await batched.apply_many(session, items, messenger)
        return [None] * len(items)
