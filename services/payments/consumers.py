"""Events of other services that payments reacts to: the ledger's answers (the saga), accounts
and top-up lots (read models), the catalogue's providers and courses (read models).

The accounts' events and the ledger's grants (an allocation's bulk facts) only feed read
models: consecutive ones of a fetched batch are applied together (``projections.apply_many``,
a few multi-row statements). Consecutive answers of the ledger are decided together too
(``saga_batch.answer``: the batch's rows locked and written in a few statements); the others
one at a time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import projections
from services.payments.handlers import Payments, claims, saga, saga_batch
from shared.events import Envelope
from shared.events.catalogue import ProviderSuspended
from shared.events.ledger import CreditsGranted, EntryReversed
from shared.inbox import EventConsumer, Handler
from shared.outbox import EventContext

log = logging.getLogger(__name__)


def register(consumer: EventConsumer, payments: Payments) -> None:
    async def account_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_account_event(session, event)

    for kind in get_args(projections.AccountEvent):
        consumer.on(kind)(account_event)

    async def lot_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_ledger_event(session, event)

    consumer.on(CreditsGranted)(lot_event)

    @consumer.on_batch(*get_args(projections.BatchedEvent))
    async def projected(
        session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
    ) -> list[BaseException | None]:
        # the accounts' and the allocation's bulk facts: a fetched batch in a few statements
        await projections.apply_many(session, [event for _, event in items])
        return [None] * len(items)

    @consumer.on(EntryReversed)
    async def reversed_entry(session: AsyncSession, env: Envelope, event: EntryReversed) -> None:
        await projections.apply_ledger_event(session, event)
        ctx = payments.context(session, EventContext.caused_by(env))
        await saga.on_capture_reversed(event, ctx)

    def answer_event(answer: saga.Answer) -> Handler:
        async def handle(session: AsyncSession, env: Envelope, event: Any) -> None:
            await answer(event, payments.context(session, EventContext.caused_by(env)))

        return handle

    for kind, answer in saga.ANSWERS.items():
        consumer.on(kind)(answer_event(answer))

    @consumer.on_batch(*saga.ANSWERS)
    async def answers(
        session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
    ) -> list[BaseException | None]:
        # the saga's answers: a fetched batch's rows locked and written together
        return await saga_batch.answer(payments, session, items)

    register_catalogue(consumer, payments)


def register_catalogue(consumer: EventConsumer, payments: Payments) -> None:
    async def catalogue_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_catalogue_event(session, event)

    # the read models' events, as projections types them; a suspension also holds claims
    for kind in get_args(projections.CatalogueEvent):
        if kind is not ProviderSuspended:
            consumer.on(kind)(catalogue_event)

    @consumer.on(ProviderSuspended)
    async def suspended(session: AsyncSession, env: Envelope, event: ProviderSuspended) -> None:
        await projections.apply_catalogue_event(session, event)
        # fraud hold: nothing more is paid to the provider until an agency looks
        ctx = payments.context(session, EventContext.caused_by(env))
        await claims.hold_provider_claims(event.provider_id, "provider_suspended", ctx)
