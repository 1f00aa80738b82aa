"""Co-funding rules: a funder (or the admin for it) proposes one (subject
``cofunding:<funder>:<rule>``), finance approves it (the rule is adopted,
``CofundingRuleAdopted``), and from then on each reservation it matches has its shortfall
paid (:func:`reserve`, in the transaction of ``wallets.execute_many``): a ``cofunding`` lot
granted from the rule's budget (``CreditsGranted`` and ``BudgetDrawn`` naming the rule and
the enrolment), then the reservation, which takes it first (it is earmarked to the course).
The rules themselves are :mod:`services.ledger.domain.cofunding`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import Command, ReserveCredits
from services.ledger.domain import WalletState, decide, replay
from services.ledger.domain import cofunding as rules
from services.ledger.domain.cofunding import CofundingRule
from services.ledger.domain.decide import decide_folded
from services.ledger.domain.invariants import assert_invariants
from services.ledger.handlers import Context, Ledger
from services.ledger.handlers.budgets import BudgetBook
from services.ledger.handlers.funders import funder_in_scope, funder_not_found
from services.ledger.store import cofunding as store
from services.ledger.store import funders as funder_store
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import ConflictError
from shared.events.budgets import CofundingRuleAdopted
from shared.events.ledger import LedgerEvent, ReservationRejected
from shared.outbox import EventContext

TERMS = ("year", "share", "cap", "employer_id", "region", "isced_prefix", "eqf_min", "eqf_max")


async def propose_rule(
    funder_id: str, terms: dict[str, Any], principal: Principal, fe: FourEyes, ctx: Context
) -> tuple[uuid.UUID, Proposal]:
    """``principal`` proposes a co-funding rule for ``funder_id`` (its id chosen here)."""
    await funder_in_scope(ctx.session, principal, funder_id)
    rule_id = uuid.uuid4()
    payload = {"rule_id": str(rule_id), "funder_id": funder_id, **terms}
    proposal = await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action="cofunding",
        subject=f"cofunding:{funder_id}:{rule_id}",
        payload=payload,
        summary=payload,
    )
    return rule_id, proposal


async def adopt_rule(proposal: Proposal, ctx: Context) -> dict[str, Any]:
    """Finance approved: the rule is in force (``CofundingRuleAdopted``)."""
    payload = proposal.payload
    funder_id = str(payload["funder_id"])
    funder = await funder_store.funder(ctx.session, funder_id)
    if funder is None:
        raise funder_not_found(funder_id)
    rule_id = uuid.UUID(str(payload["rule_id"]))
    terms = {k: payload.get(k) for k in TERMS}
    adopted = await store.add_rule(
        ctx.session,
        rule_id=rule_id,
        funder_id=funder_id,
        funder_kind=str(funder["kind"]),
        terms=terms,
        approval_id=proposal.approval_id,
        now=ctx.now,
    )
    if not adopted:
        raise ConflictError(f"rule {rule_id} is in force already", code="rule_adopted")
    event = CofundingRuleAdopted(
        rule_id=rule_id,
        funder_id=funder_id,
        approval_id=proposal.approval_id,
        occurred_at=ctx.now,
        **terms,
    )
    await ctx.outbox.add(ctx.session, [event], ctx.events)
    ctx.outbox.staged(ctx.session)
    return {"rule_id": str(rule_id), "funder_id": funder_id, **terms}


async def candidates(commands: Sequence[Command], ctx: Context) -> list[CofundingRule]:
    """The rules in force that may pay one of the reservations among ``commands`` (their
    budgets are locked with the batch's; the learner's employer is weighed later)."""
    courses = [c.course for c in commands if isinstance(c, ReserveCredits)]
    if not courses:
        return []
    found = await store.rules_in_force(ctx.session, ctx.now.year)
    return [r for r in found if any(r.fits(course, ctx.now) for course in courses)]


def reserve(
    state: WalletState,
    cmd: ReserveCredits,
    in_force: Sequence[CofundingRule],
    book: BudgetBook,
    ctx: Context,
    caused: EventContext | None,
) -> tuple[list[LedgerEvent], WalletState]:
    """What the reservation decides, the co-funding of its shortfall first (drawn from the
    rules' budgets in ``book``), and the wallet after it (folded and checked, as
    ``decide_folded`` gives it). Raises as ``decide`` does; the caller then undoes the
    book's draws."""
    gap = rules.shortfall(state, cmd, ctx.now) if in_force else 0
    paid = rules.payments(state, cmd, in_force, book.left(), ctx.now) if gap else []
    if not paid:
        return decide_folded(state, cmd, ctx.now)
    if not rules.covers(cmd, gap, paid):
        offered = sum(p.amount for p in paid)
        refused = [_with_offer(e, offered) for e in decide(state, cmd, ctx.now)]
        after = replay(refused, state)
        assert_invariants(after)
        return refused, after
    events: list[LedgerEvent] = []
    after = state
    for grant, payment in zip(rules.grants(cmd, paid, ctx.now), paid, strict=True):
        granted, after = decide_folded(after, grant, ctx.now)
        events += granted
        book.draw(grant, ctx, caused, rule_id=payment.rule.rule_id, enrolment_id=cmd.enrolment_id)
    reserved, after = decide_folded(after, cmd, ctx.now)
    return events + reserved, after


def _with_offer(event: LedgerEvent, offered: int) -> LedgerEvent:
    """A refusal for want of credit counts what co-funding would pay once the learner
    accepts to pay the rest."""
    if isinstance(event, ReservationRejected) and event.reason == "insufficient_credit":
        return event.model_copy(update={"available": event.available + offered})
    return event


def register(fe: FourEyes, ledger: Ledger) -> None:
    @fe.action("cofunding")
    async def _cofunding(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await adopt_rule(proposal, ledger.context(session, events))


__all__ = ["adopt_rule", "candidates", "propose_rule", "register", "reserve"]
