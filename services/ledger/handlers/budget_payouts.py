"""A funder's budget paying a claim to a payee outside the wallets: the leave fund paying an
employer's wage compensation for paid training leave.

Payments asks with ``LeaveCompensationClaimed`` (the claim, the fund, the year, the amount,
the employer's payee). In the consumer's transaction, under the same locks as a grant (the
shared append lock, then the budget's row), the budget pays the claim (``BudgetPaidOut``,
appended to its stream and published) or refuses (``BudgetPayoutRefused``, published only:
nothing was drawn). The budget's rule is the grants' rule: never past what is left, so the
fund can never be overspent; a claim delivered twice is paid once.

Why not a top-up lot: a lot lives in a learner's wallet and is spent through a reservation
for a provider's course; wage compensation is owed to the employer, not to the learner, and
must not be spendable on anything else. The budget's stream records the payment as what it
is, beside the lots it granted.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import budget_payouts as rules
from services.ledger.domain.errors import LedgerError
from services.ledger.handlers import Context, Ledger
from services.ledger.handlers.budgets import BudgetBook
from services.ledger.store import batch as batch_store
from services.ledger.store import budget_payouts as store
from services.ledger.store import events as event_store
from services.ledger.store import funders as funder_store
from shared.events import Envelope
from shared.events.budgets import budget_id_of
from shared.events.leave import BudgetPayoutRefused, LeaveCompensationClaimed
from shared.inbox import EventConsumer
from shared.outbox import EventContext


async def pay_compensation(request: LeaveCompensationClaimed, ctx: Context) -> None:
    """Pay the claim from the fund's budget of its year, or refuse it (nothing drawn)."""
    session = ctx.session
    budget_id = budget_id_of(request.fund_id, request.year)
    await event_store.take_append_lock(session)
    book = BudgetBook(await funder_store.lock_budgets(session, [budget_id]))
    state, _ = book.states[budget_id]
    try:
        events = rules.pay_out(
            state,
            claim_id=request.claim_id,
            payee_id=request.payee_id,
            amount=request.amount,
            paid=await store.paid(session, budget_id, request.claim_id),
            now=ctx.now,
        )
    except LedgerError as error:
        if error.kind == "internal":
            raise
        refused = BudgetPayoutRefused(
            claim_id=request.claim_id,
            funder_id=request.fund_id,
            year=request.year,
            amount=request.amount,
            reason=error.code,
            occurred_at=ctx.now,
        )
        await ctx.emit(refused)
        return
    if not events:
        return  # paid already: its BudgetPaidOut was published then
    book.append(budget_id, events, ctx)
    await batch_store.write(
        session,
        f'"{ctx.outbox.service}".outbox',
        book.rows,
        [],
        [],
        [],
        ctx.outbox.rows(book.envelopes),
    )
    ctx.outbox.staged(session)
    await book.save(ctx)


def register(consumer: EventConsumer, ledger: Ledger) -> None:
    @consumer.on(LeaveCompensationClaimed)
    async def _claimed(
        session: AsyncSession, env: Envelope, event: LeaveCompensationClaimed
    ) -> None:
        await pay_compensation(event, ledger.context(session, EventContext.caused_by(env)))


__all__ = ["pay_compensation", "register"]
