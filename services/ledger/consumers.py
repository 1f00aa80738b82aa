"""Events of other services that move the ledger: accounts (wallet lifecycle, need
profile) and payments (reserve, capture, release)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import (
    CaptureReservation,
    ReleaseReservation,
    ReserveCredits,
    command_for_account_event,
)
from services.ledger.handlers import Ledger
from services.ledger.store import set_agency
from shared.events import Envelope
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
)
from shared.events.payments import CaptureRequested, EnrolmentRequested, ReleaseRequested
from shared.inbox import EventConsumer
from shared.outbox import EventContext


def register(consumer: EventConsumer, ledger: Ledger) -> None:
    async def account_event(session: AsyncSession, env: Envelope, event: object) -> None:
        command = command_for_account_event(event)  # type: ignore[arg-type]
        if command is not None:
            await ledger.execute(session, command, EventContext.caused_by(env))

    async def opened(session: AsyncSession, env: Envelope, event: AccountOpened) -> None:
        await set_agency(session, event.account_id, event.agency_id)
        await account_event(session, env, event)

    async def transferred(session: AsyncSession, env: Envelope, event: AccountTransferred) -> None:
        await set_agency(session, event.account_id, event.to_agency_id)

    consumer.on(AccountOpened)(opened)
    consumer.on(AccountTransferred)(transferred)
    for kind in (AccountProfileUpdated, AccountSuspended, AccountReinstated, AccountClosed):
        consumer.on(kind)(account_event)

    @consumer.on(EnrolmentRequested)
    async def reserve(session: AsyncSession, env: Envelope, event: EnrolmentRequested) -> None:
        await ledger.execute(
            session,
            ReserveCredits(
                account_id=event.account_id,
                reservation_id=event.reservation_id,
                enrolment_id=event.enrolment_id,
                amount=event.amount,
                course=event.course,
                up_to=event.up_to,
                expires_at=event.expires_at,
            ),
            EventContext.caused_by(env),
        )

    @consumer.on(CaptureRequested)
    async def capture(session: AsyncSession, env: Envelope, event: CaptureRequested) -> None:
        await ledger.execute(
            session,
            CaptureReservation(
                account_id=event.account_id,
                reservation_id=event.reservation_id,
                amount=event.amount,
            ),
            EventContext.caused_by(env),
        )

    @consumer.on(ReleaseRequested)
    async def release(session: AsyncSession, env: Envelope, event: ReleaseRequested) -> None:
        await ledger.execute(
            session,
            ReleaseReservation(
                account_id=event.account_id, reservation_id=event.reservation_id, reason="cancelled"
            ),
            EventContext.caused_by(env),
        )
