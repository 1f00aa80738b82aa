"""Events of other services that move the ledger: accounts (wallet lifecycle, need profile,
the managing agency) and payments (reserve, capture, release). Each becomes a wallet command
(``commands.command_for_event``) executed in the consumer's transaction. A reservation or a
capture the wallet refuses is answered with its refusal (``ReservationRejected``,
``CaptureRejected``), never left unanswered in the dead letters.

Consecutive events of a fetched batch are decided together (``wallets.execute_many``: the
heads locked in one statement, one statement writes what they all decided); a command the
wallet refuses is answered alone (its refusal, or the dead letters), its neighbours applied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import (
    CaptureReservation,
    CommandEvent,
    ReserveCredits,
    command_for_event,
)
from services.ledger.domain.errors import LedgerError
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import Order, execute_many, refuse
from services.ledger.handlers.wallets import execute as execute_command
from services.ledger.store.projections import set_agency
from shared.errors import DomainError
from shared.events import Envelope
from shared.events.accounts import AccountOpened, AccountTransferred
from shared.events.base import Event
from shared.events.payments import CaptureRequested, EnrolmentRequested
from shared.inbox import EventConsumer, Handler
from shared.outbox import EventContext

Consumed = CommandEvent | AccountTransferred
"""Every event this consumer takes; consecutive ones of a fetched batch are decided together."""


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

    async def requested(session: AsyncSession, env: Envelope, event: Event) -> None:
        command = command_for_event(event)
        assert command is not None
        ctx = ledger.context(session, EventContext.caused_by(env))
        try:
            await execute_command(command, ctx)
        except LedgerError as error:
            if error.kind == "internal":
                raise
            await refuse(command, error, ctx)

    async def execute_batch(
        session: AsyncSession, items: Sequence[tuple[Envelope, Any]]
    ) -> list[BaseException | None]:
        orders: list[Order] = []
        slots: list[int] = []
        for i, (env, event) in enumerate(items):
            if isinstance(event, AccountOpened | AccountTransferred):
                agency = event.agency_id if isinstance(event, AccountOpened) else event.to_agency_id
                await set_agency(session, event.account_id, agency)
            command = command_for_event(event)
            if command is not None:
                orders.append(Order(command, EventContext.caused_by(env)))
                slots.append(i)
        errors: list[BaseException | None] = [None] * len(items)
        batch = ledger.context(session, EventContext.new("ledger"))  # each order has its cause
        for i, order, answer in zip(slots, orders, await execute_many(orders, batch), strict=True):
            if not isinstance(answer, DomainError):
                continue
            if (
                isinstance(answer, LedgerError)
                and answer.kind != "internal"
                and isinstance(order.command, ReserveCredits | CaptureReservation)
            ):  # answered with its refusal, after the batch's own events
                ctx = ledger.context(session, order.events or batch.events, now=batch.now)
                await refuse(order.command, answer, ctx)
            else:
                errors[i] = answer
        return errors

    special: dict[type[Event], Handler] = {
        AccountOpened: opened,
        AccountTransferred: transferred,
        EnrolmentRequested: requested,
        CaptureRequested: requested,
    }
    for kind in get_args(Consumed):  # the others: their wallet command, executed
        consumer.on(kind)(special.get(kind, execute))
    consumer.on_batch(*get_args(Consumed))(execute_batch)
