"""Other services' events the catalogue acts on.

- ``payments.CompletionCertified`` issues the micro-credential of the completion (a
  completion naming a course version the catalogue never had is dead-lettered);
  ``payments.ClaimReversed`` of a completion revokes it;
- ``accounts.AccountOpened`` / ``AccountTransferred`` and ``payments.EnrolmentConfirmed`` /
  ``EnrolmentCancelled`` / ``EnrolmentRejected`` feed the read models of
  :mod:`services.catalogue.projections`.

Each message is handled in the consumer's transaction, with its inbox row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue import projections
from services.catalogue.deps import CatalogueComponents
from services.catalogue.handlers import credentials
from shared.events import Envelope
from shared.events.accounts import AccountOpened, AccountTransferred
from shared.events.payments import (
    ClaimReversed,
    CompletionCertified,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentRejected,
)
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
    for account_kind in (AccountOpened, AccountTransferred):
        consumer.on(account_kind)(account_event)
    for enrolment_kind in (EnrolmentConfirmed, EnrolmentCancelled, EnrolmentRejected):
        consumer.on(enrolment_kind)(enrolment_event)
