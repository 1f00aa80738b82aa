"""Events of other services that payments reacts to: the ledger's answers (the saga), accounts
and top-up lots (read models), the catalogue's providers and courses (read models)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import projections
from services.payments.handlers import Payments, claims, saga
from shared.events import Envelope
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
)
from shared.events.catalogue import (
    CourseApproved,
    CourseRejected,
    CourseSubmitted,
    CourseUpdated,
    CourseWithdrawn,
    ProviderAccredited,
    ProviderRegistered,
    ProviderSuspended,
)
from shared.events.ledger import (
    CaptureRejected,
    CreditsGranted,
    CreditsReserved,
    EntryReversed,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)
from shared.inbox import EventConsumer
from shared.outbox import EventContext

log = logging.getLogger(__name__)


def register(consumer: EventConsumer, payments: Payments) -> None:
    async def account_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_account_event(session, event)

    for kind in (
        AccountOpened,
        AccountProfileUpdated,
        AccountSuspended,
        AccountReinstated,
        AccountClosed,
        AccountTransferred,
    ):
        consumer.on(kind)(account_event)

    async def lot_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_ledger_event(session, event)

    consumer.on(CreditsGranted)(lot_event)

    @consumer.on(EntryReversed)
    async def reversed_entry(session: AsyncSession, env: Envelope, event: EntryReversed) -> None:
        await projections.apply_ledger_event(session, event)
        ctx = payments.context(session, EventContext.caused_by(env))
        await saga.on_capture_reversed(event, ctx)

    @consumer.on(CreditsReserved)
    async def reserved(session: AsyncSession, env: Envelope, event: CreditsReserved) -> None:
        await saga.on_reserved(event, payments.context(session, EventContext.caused_by(env)))

    @consumer.on(ReservationRejected)
    async def rejected(session: AsyncSession, env: Envelope, event: ReservationRejected) -> None:
        await saga.on_rejected(event, payments.context(session, EventContext.caused_by(env)))

    @consumer.on(ReservationCaptured)
    async def captured(session: AsyncSession, env: Envelope, event: ReservationCaptured) -> None:
        await saga.on_captured(event, payments.context(session, EventContext.caused_by(env)))

    @consumer.on(CaptureRejected)
    async def capture_rejected(
        session: AsyncSession, env: Envelope, event: CaptureRejected
    ) -> None:
        ctx = payments.context(session, EventContext.caused_by(env))
        await saga.on_capture_rejected(event, ctx)

    @consumer.on(ReservationReleased)
    async def released(session: AsyncSession, env: Envelope, event: ReservationReleased) -> None:
        await saga.on_released(event, payments.context(session, EventContext.caused_by(env)))

    register_catalogue(consumer, payments)


def register_catalogue(consumer: EventConsumer, payments: Payments) -> None:
    async def catalogue_event(session: AsyncSession, env: Envelope, event: Any) -> None:
        await projections.apply_catalogue_event(session, event)

    for kind in (
        ProviderRegistered,
        ProviderAccredited,
        CourseApproved,
        CourseUpdated,
        CourseSubmitted,
        CourseRejected,
        CourseWithdrawn,
    ):
        consumer.on(kind)(catalogue_event)

    @consumer.on(ProviderSuspended)
    async def suspended(session: AsyncSession, env: Envelope, event: ProviderSuspended) -> None:
        await projections.apply_catalogue_event(session, event)
        # fraud hold: nothing more is paid to the provider until an agency looks
        ctx = payments.context(session, EventContext.caused_by(env))
        await claims.hold_provider_claims(event.provider_id, "provider_suspended", ctx)
