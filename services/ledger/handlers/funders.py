"""Funders and their budgets: registering a funder (admin), proposing a funder's budget for a
year (admin; subject ``budget:<funder>:<year>``), and what approving it does (``finance``:
the budget's ``BudgetSet`` is appended). Who may act for a funder (:func:`funder_in_scope`):
the funder itself (a ``funder`` token with its ``funder_id``) and the national roles;
anyone else is answered as if the funder did not exist.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain.budgets import BudgetBelowDrawn
from services.ledger.domain.errors import IdConflict
from services.ledger.handlers import Context, Ledger
from services.ledger.handlers.budgets import set_budget
from services.ledger.store import funders as funder_store
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import NotFoundError
from shared.events.budgets import budget_id_of
from shared.events.leave import FunderRegistered
from shared.outbox import EventContext

FunderKind = Literal["employer", "region", "sector_fund", "state"]


def funder_not_found(funder_id: str) -> NotFoundError:
    return NotFoundError(f"no funder {funder_id}", code="funder_not_found")


async def funder_in_scope(
    session: AsyncSession, principal: Principal, funder_id: str
) -> dict[str, Any]:
    """The funder, if ``principal`` may act on it; 404 otherwise (whether it exists or not)."""
    if principal.role == "funder" and principal.funder_id != funder_id:
        raise funder_not_found(funder_id)
    found = await funder_store.funder(session, funder_id)
    if found is None:
        raise funder_not_found(funder_id)
    return found


async def register_funder(
    *,
    funder_id: str | None = None,
    kind: FunderKind,
    name: str,
    employer_id: str | None,
    region: str | None,
    principal: Principal,
    ctx: Context,
) -> str:
    """A new funder under ``funder_id`` (a well-known id the deployment configures), or an
    id chosen here (tokens of role ``funder`` carry it); told to the other services
    (``FunderRegistered``: its id and kind). An id already taken is refused."""
    funder_id = funder_id or str(uuid.uuid4())
    added = await funder_store.add_funder(
        ctx.session,
        funder_id=funder_id,
        kind=kind,
        name=name,
        employer_id=employer_id,
        region=region,
        created_by=ctx.outbox.actor(principal.actor),
        now=ctx.now,
    )
    if not added:
        raise IdConflict(f"a funder {funder_id} is already registered")
    # payments keeps the funders it meets (an employer deciding on training leave)
    await ctx.emit(FunderRegistered(funder_id=funder_id, kind=kind, occurred_at=ctx.now))
    return funder_id


async def _drawn(session: AsyncSession, funder_id: str, year: int) -> int:
    for budget in await funder_store.budgets_of(session, funder_id):
        if budget["year"] == year:
            return int(budget["drawn"])
    return 0


async def propose_budget(
    funder_id: str, year: int, amount: int, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes ``amount`` as ``funder_id``'s budget of ``year``; refused at
    once below what the funder already granted from it."""
    await funder_in_scope(ctx.session, principal, funder_id)
    drawn = await _drawn(ctx.session, funder_id, year)
    if amount < drawn:
        raise BudgetBelowDrawn(f"the budget of {year} cannot be {amount}: {drawn} was granted")
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action="budget",
        subject=f"budget:{funder_id}:{year}",
        payload={"funder_id": funder_id, "year": year, "amount": amount},
        summary={"funder_id": funder_id, "year": year, "amount": amount, "drawn": drawn},
    )


async def approve_budget(proposal: Proposal, ctx: Context) -> dict[str, Any]:
    funder_id = str(proposal.payload["funder_id"])
    year, amount = int(proposal.payload["year"]), int(proposal.payload["amount"])
    if await funder_store.funder(ctx.session, funder_id) is None:
        raise funder_not_found(funder_id)
    state = await set_budget(funder_id, year, amount, proposal.approval_id, ctx)
    return {
        "funder_id": funder_id,
        "year": year,
        "budget_id": str(budget_id_of(funder_id, year)),
        "amount": state.amount,
        "drawn": state.drawn,
    }


def register(fe: FourEyes, ledger: Ledger) -> None:
    @fe.action("budget")
    async def _budget(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await approve_budget(proposal, ledger.context(session, events))


__all__ = [
    "FunderKind",
    "approve_budget",
    "funder_in_scope",
    "propose_budget",
    "register",
    "register_funder",
]
