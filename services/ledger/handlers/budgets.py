"""Appending to funders' budget streams, in the transaction of the grants that draw on them
(:class:`BudgetBook`, used by ``wallets.execute_many``) or of the approval that sets one
(:func:`set_budget`).

Lock order, the same in every transaction: the shared append lock, then the budgets' rows
(by budget id), then the wallets' rows (by account id). So grants from one funder that
arrive together, or in concurrent batches, are decided one after the other against what
is left of the budget, and never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.ledger.commands import Command, GrantCredits
from services.ledger.domain import budgets as rules
from services.ledger.domain.budgets import BudgetState
from services.ledger.handlers import Context
from services.ledger.store import batch as batch_store
from services.ledger.store import events as event_store
from services.ledger.store import funders as funder_store
from services.ledger.store.events import Head
from shared.events import Envelope
from shared.events.budgets import BudgetEvent, budget_id_of
from shared.outbox import EventContext


def draws_budget(command: Command) -> bool:
    return isinstance(command, GrantCredits) and command.from_budget


def budget_of(command: GrantCredits) -> uuid.UUID:
    assert command.year is not None  # a grant from a budget names its year
    return budget_id_of(command.funder_id, command.year)


@dataclass
class BudgetBook:
    """The budgets one transaction draws on: their states (rows locked) as decided so far,
    and the event rows and envelopes of the draws decided."""

    states: dict[uuid.UUID, tuple[BudgetState, Head | None]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    changed: set[uuid.UUID] = field(default_factory=set)

    @classmethod
    async def lock(
        cls, commands: Sequence[Command], ctx: Context, also: Iterable[uuid.UUID] = ()
    ) -> BudgetBook:
        """Lock the budgets ``commands`` draw on, and those ``also`` named (the co-funding
        rules' that may pay a reservation of the batch); none: nothing is locked."""
        ids = sorted(
            {budget_of(c) for c in commands if isinstance(c, GrantCredits) and c.from_budget}
            | set(also)
        )
        if not ids:
            return cls()
        await event_store.take_append_lock(ctx.session)
        return cls(await funder_store.lock_budgets(ctx.session, ids))

    def left(self) -> dict[uuid.UUID, int]:
        """What is left of each locked budget, as decided so far (never set: nothing)."""
        return {b: state.left if state.version else 0 for b, (state, _) in self.states.items()}

    def draw(
        self,
        command: GrantCredits,
        ctx: Context,
        caused: EventContext | None = None,
        idempotency_key: str | None = None,
        *,
        rule_id: uuid.UUID | None = None,
        enrolment_id: uuid.UUID | None = None,
    ) -> None:
        """Draw ``command``'s amount from its budget, or raise (nothing drawn)."""
        budget_id = budget_of(command)
        state, _ = self.states[budget_id]
        if state.funder_id not in (None, command.funder_id):
            raise rules.BudgetNotSet("the budget belongs to another funder")
        events = rules.draw(
            state,
            lot_id=command.lot_id,
            account_id=command.account_id,
            amount=command.amount,
            now=ctx.now,
            rule_id=rule_id,
            enrolment_id=enrolment_id,
        )
        self.append(budget_id, events, ctx, caused, idempotency_key)

    def mark(self) -> tuple[dict[uuid.UUID, tuple[BudgetState, Head | None]], int, set[uuid.UUID]]:
        """Where the book stands, to :meth:`undo` back to when a decision is refused."""
        return dict(self.states), len(self.rows), set(self.changed)

    def undo(
        self, mark: tuple[dict[uuid.UUID, tuple[BudgetState, Head | None]], int, set[uuid.UUID]]
    ) -> None:
        states, rows, changed = mark
        self.states = states
        envelopes = len(self.envelopes) - (len(self.rows) - rows)
        del self.rows[rows:]
        del self.envelopes[envelopes:]
        self.changed = changed

    def append(
        self,
        budget_id: uuid.UUID,
        events: Sequence[BudgetEvent],
        ctx: Context,
        caused: EventContext | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        state, head = self.states[budget_id]
        envelopes = [ctx.outbox.envelope(e, caused or ctx.events) for e in events]
        rows = event_store.build_rows(budget_id, head, envelopes, ctx.now, idempotency_key)
        after = rules.replay_budget(events, state)
        self.states[budget_id] = (after, Head(after.version, str(rows[-1]["hash"])))
        self.rows += rows
        self.envelopes += envelopes
        self.changed.add(budget_id)

    async def save(self, ctx: Context) -> None:
        """Write the changed budgets' rows (their events go with the caller's statement)."""
        saved = []
        for budget_id in sorted(self.changed):
            state, head = self.states[budget_id]
            assert head is not None
            saved.append((state, head))
        await funder_store.save_budgets(ctx.session, saved, ctx.now)


async def set_budget(
    funder_id: str, year: int, amount: int, approval_id: uuid.UUID, ctx: Context
) -> BudgetState:
    """Set ``funder_id``'s budget of ``year`` to ``amount`` (the approval's action)."""
    budget_id = budget_id_of(funder_id, year)
    await event_store.take_append_lock(ctx.session)
    locked = await funder_store.lock_budget_to_set(ctx.session, budget_id, funder_id, year, ctx.now)
    book = BudgetBook({budget_id: locked})
    events = rules.set_budget(
        locked[0],
        budget_id=budget_id,
        funder_id=funder_id,
        year=year,
        amount=amount,
        approval_id=approval_id,
        now=ctx.now,
    )
    if not events:
        return locked[0]
    book.append(budget_id, events, ctx)
    await batch_store.write(
        ctx.session,
        f'"{ctx.outbox.service}".outbox',
        book.rows,
        [],
        [],
        [],
        ctx.outbox.rows(book.envelopes),
    )
    ctx.outbox.staged(ctx.session)
    await book.save(ctx)
    return book.states[budget_id][0]


__all__ = ["BudgetBook", "budget_of", "draws_budget", "set_budget"]
