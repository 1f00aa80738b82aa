"""Events of other services that move the ledger: accounts (wallet lifecycle, need profile,
the managing agency) and payments (reserve, capture, release). Each becomes a wallet command
(``commands.command_for_event``) executed in the consumer's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import command_for_event
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import execute as execute_command
from services.ledger.store.projections import set_agency
from shared.events import Envelope
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
)
from shared.events.base import Event
from shared.events.payments import CaptureRequested, EnrolmentRequested, ReleaseRequested
from shared.inbox import EventConsumer
from shared.outbox import EventContext


def register(consumer: EventConsumer, ledger: Ledger) -> None:
    async def execute(session: AsyncSession, env: Envelope, event: Event) -> None:
        command = command_for_event(event)
        if command is not None:
            await execute_command(command, ledger.context(session, EventContext.caused_by(env)))

    async def opened(session: AsyncSession, env: Envelope, event: AccountOpened) -> None:
        await set_agency(session, event.account_id, event.agency_id)
        await execute(session, env, event)

    async def transferred(session: AsyncSession, env: Envelope, event: AccountTransferred) -> None:
        await set_agency(session, event.account_id, event.to_agency_id)

    consumer.on(AccountOpened)(opened)
    consumer.on(AccountTransferred)(transferred)
    for kind in (
        AccountProfileUpdated,
        AccountSuspended,
        AccountReinstated,
        AccountClosed,
        EnrolmentRequested,
        CaptureRequested,
        ReleaseRequested,
    ):
        consumer.on(kind)(execute)
