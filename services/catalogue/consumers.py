"""Other services' events the catalogue acts on.

- ``payments.CompletionCertified`` issues the micro-credential of the completion (a
  completion naming a course version the catalogue never had is dead-lettered);
  ``payments.ClaimReversed`` of a completion revokes it;
- ``accounts.AccountOpened`` / ``AccountTransferred`` and ``payments.EnrolmentConfirmed`` /
  ``EnrolmentCancelled`` / ``EnrolmentRejected`` feed the read models of
  :mod:`services.catalogue.projections`.

Each message is handled in the consumer's transaction, with its inbox row; consecutive read
model events of a fetched batch are applied together (``projections.apply_many``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue import projections
from services.catalogue.deps import CatalogueComponents
from services.catalogue.handlers import credentials
from shared.events import Envelope
from shared.events.payments import ClaimReversed, CompletionCertified
from shared.inbox import EventConsumer
from shared.outbox import EventContext

ACTOR = "service:catalogue"


def register(consumer: EventConsumer, components: CatalogueComponents) -> None:
    """Subscribe the catalogue's handlers to the events it consumes."""

    async def completion_certified(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        ctx = components.context(session, EventContext.caused_by(envelope, actor=ACTOR))
        await credentials.issue(payload, ctx)

    async def account_event(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        await projections.apply_account_event(session, payload)

    async def enrolment_event(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        await projections.apply_enrolment_event(session, payload)

    async def claim_reversed(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        if payload.milestone == "completion":
            ctx = components.context(session, EventContext.caused_by(envelope, actor=ACTOR))
            await credentials.revoke_for_reversal(payload.enrolment_id, ctx)

    consumer.on(CompletionCertified)(completion_certified)
    consumer.on(ClaimReversed)(claim_reversed)
    # the read models' events, as projections types them
    for account_kind in get_args(projections.AccountEvent):
        consumer.on(account_kind)(account_event)
    for enrolment_kind in get_args(projections.EnrolmentEvent):
        consumer.on(enrolment_kind)(enrolment_event)

    @consumer.on_batch(*get_args(projections.AccountEvent), *get_args(projections.EnrolmentEvent))
    async def projected(
        session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
    ) -> list[BaseException | None]:
        await projections.apply_many(session, [event for _, event in items])
        return [None] * len(items)
