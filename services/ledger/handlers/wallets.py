"""The wallet use cases: load a wallet, decide, append (chained), project, stage the events
for the ``ledger`` topic — all in the caller's transaction; and a wallet as it stood at a
past instant.

Loading replays the account's stream, or takes the state this process computed last time
when the locked head (version and hash) still matches it (see :class:`StateCache`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import CaptureReservation, Command, GrantCredits, ReserveCredits
from services.ledger.domain import WalletState, replay
from services.ledger.domain.decide import decide_folded
from services.ledger.domain.errors import LedgerError
from services.ledger.domain.reservations import capture_refused, reservation_refused
from services.ledger.handlers import Context, cofunding
from services.ledger.handlers.budgets import BudgetBook, draws_budget
from services.ledger.handlers.bulk import Columns, append_many
from services.ledger.store import events as event_store
from services.ledger.store import projections
from services.ledger.store.events import Head
from shared.errors import DomainError
from shared.events.ledger import LedgerEvent
from shared.outbox import EventContext

__all__ = [
    "Order",
    "Outcome",
    "append_many",
    "execute",
    "execute_many",
    "load",
    "load_many",
    "refuse",
]


@dataclass(frozen=True)
class Outcome:
    events: list[LedgerEvent]
    state: WalletState


async def load(account_id: uuid.UUID, ctx: Context) -> tuple[WalletState, Head | None]:
    """The wallet's current state, its row locked until the transaction ends."""
    head = await event_store.lock_head(ctx.session, account_id)
    if head is None:
        return WalletState(), None
    return (await ctx.cache.states(ctx.session, {account_id: head}))[account_id], head


async def state_at(
    session: AsyncSession, account_id: uuid.UUID, instant: datetime
) -> WalletState | None:
    """The wallet as its events left it at ``instant``; None when there is no wallet."""
    rows = await event_store.load_stream(session, account_id, upto=instant)
    if not rows and await projections.wallet(session, account_id) is None:
        return None
    return replay(r.payload() for r in rows)


async def execute(command: Command, ctx: Context, *, idempotency_key: str | None = None) -> Outcome:
    """Decide ``command`` on the wallet as it stands, at the context's instant, and append
        what it decided (nothing when it refused). A grant from a funder's budget draws on it in
        the same transaction, and a reservation may have its shortfall co-funded (both decided as a
    batch of one, which locks the budgets first)."""
    if draws_budget(command) or isinstance(command, ReserveCredits):
        (result,) = await execute_many([Order(command, None, idempotency_key)], ctx)
        if isinstance(result, DomainError):
            raise result
        return result
    state, head = await load(command.account_id, ctx)
    events, after = decide_folded(state, command, ctx.now)
    if not events:
        return Outcome([], state)
    await _append(state, head, events, after, ctx, idempotency_key)
    return Outcome(events, after)


async def refuse(command: Command, error: LedgerError, ctx: Context) -> Outcome:
    """Answer a reservation or a capture that ``decide`` refused with ``error``: the refusal
    is an event (``ReservationRejected``, ``CaptureRejected``), so the service that asked
    hears of it. Any other command's error is raised again."""
    state, head = await load(command.account_id, ctx)
    event: LedgerEvent
    if isinstance(command, CaptureReservation):
        event = capture_refused(state, command, error, ctx.now)
    elif isinstance(command, ReserveCredits):
        event = reservation_refused(state, command, error, ctx.now)
    else:
        raise error
    after = replay([event], state)
    await _append(state, head, [event], after, ctx, None)
    return Outcome([event], after)


async def _append(
    state: WalletState,
    head: Head | None,
    events: Sequence[LedgerEvent],
    after: WalletState,
    ctx: Context,
    idempotency_key: str | None,
) -> None:
    """Append one stream's ``events`` (``after``: the state they fold to) in one statement."""
    columns = Columns(ctx)
    columns.project(state, after, columns.chain(head, events, None, idempotency_key))
    await columns.write()


class Order(NamedTuple):
    """One command of a batch, with what caused it (None: the context's) and the request's
    ``Idempotency-Key``."""

    command: Command
    events: EventContext | None = None
    idempotency_key: str | None = None


async def execute_many(
    orders: Sequence[Order | tuple[Command, EventContext]], ctx: Context
) -> list[Outcome | DomainError]:
    """Decide many commands together, in the context's transaction, in the order given.

    The heads of every account named are locked in one statement, in account order (so two
    batches never deadlock); states come from the cache, misses replayed in one query.
    Commands for the same account fold through its state one after the other. A command the
    domain refuses is answered alone with its error and leaves the state as it was; what the
    others decided is written in one statement (events chained in the order given, wallet,
    lot and reservation rows, outbox).

    A grant from a funder's budget draws on it too: the budgets named are locked before the
    wallets (budget order), and a draw past what is left refuses that grant alone. So are
    the budgets of the co-funding rules that may pay a reservation's shortfall
    (``cofunding.reserve``).
    """
    items = [Order(*o) for o in orders]
    commands = [o.command for o in items]
    in_force = await cofunding.candidates(commands, ctx)
    book = await BudgetBook.lock(commands, ctx, {r.budget_id for r in in_force})
    states = await load_many(sorted({o.command.account_id for o in items}), ctx)
    before = dict(states)
    results: list[Outcome | DomainError] = []
    columns = Columns(ctx)
    for order in items:
        command = order.command
        state, head = states[command.account_id]
        mark = book.mark()
        try:
            if isinstance(command, ReserveCredits):
                events, after = cofunding.reserve(state, command, in_force, book, ctx, order.events)
            else:
                events, after = decide_folded(state, command, ctx.now)
            if events and isinstance(command, GrantCredits) and command.from_budget:
                book.draw(command, ctx, order.events, order.idempotency_key)
        except DomainError as refused:
            book.undo(mark)
            results.append(refused)
            continue
        if not events:
            results.append(Outcome([], state))
            continue
        head = columns.chain(head, events, order.events, order.idempotency_key)
        states[command.account_id] = (after, head)
        results.append(Outcome(events, after))
    for account_id, (after, head) in states.items():
        if head is not None and after is not before[account_id][0]:
            columns.project(before[account_id][0], after, head)
    columns.add_rows(book.rows, book.envelopes)
    if columns.events:
        await columns.write(locked=True)
        if book.changed:
            await book.save(ctx)
    return results


async def load_many(
    account_ids: Sequence[uuid.UUID], ctx: Context
) -> dict[uuid.UUID, tuple[WalletState, Head | None]]:
    """Each account's state and head, every head locked (``account_ids`` sorted), with the
    shared append lock."""
    heads = await event_store.lock_heads(ctx.session, account_ids)
    states = await ctx.cache.states(ctx.session, heads)
    return {a: (states[a], heads[a]) if a in heads else (WalletState(), None) for a in account_ids}
