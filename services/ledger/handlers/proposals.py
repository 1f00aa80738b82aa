"""The ledger's four-eyes actions: what is proposed, and what approving it does.

- ``policy`` (subject ``policy:<year>``): an admin proposes the entitlement policy of a year;
  once finance approves, it is the policy in force (who proposed and who approved are kept
  with it).
- ``allocation`` (subject ``allocation:<year>``): an admin or an agency proposes the yearly
  allocation of the current or next year, which must have an approved policy; once finance
  approves, a run is created with that policy and the ledger's job loop runs it.
- ``reversal`` (subject ``reversal:<account>:<grant|capture>:<id>``): an admin proposes to
  compensate a grant or a capture; once finance approves, the reversal is appended.

Each check is made when proposing (so a proposal that could never be carried out is refused
at once) and again when approving (the world may have changed in between).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import CaptureTarget, GrantTarget, ReverseEntry
from services.ledger.domain import EntitlementPolicy, NothingToReverse, PolicyTerms, decide
from services.ledger.handlers import Context, Ledger, allocation, wallets
from services.ledger.handlers.allocation import Waker
from services.ledger.store import runs
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import ConflictError, InvalidError
from shared.outbox import EventContext


def open_years(now: datetime) -> tuple[int, int]:
    """The years an allocation may run for: the current one and the next."""
    return now.year, now.year + 1


def check_year_open(year: int, now: datetime) -> None:
    first, last = open_years(now)
    if not first <= year <= last:
        raise InvalidError(
            f"an allocation runs only for the current or the next year ({first} or {last})",
            code="allocation_year_not_open",
            field="year",
        )


async def policy_in_force(session: AsyncSession, year: int) -> tuple[EntitlementPolicy, str]:
    """The approved policy of ``year`` and the approval that made it, or 409."""
    stored = await runs.approved_policy(session, year)
    if stored is None:
        raise ConflictError(
            f"no approved entitlement policy for {year}: propose one (PUT "
            f"/v1/ledger/policies/{year}) and have it approved first",
            code="no_approved_policy",
        )
    policy = EntitlementPolicy.model_validate({**stored["policy"], "year": year})
    return policy, str(stored["approval_id"])


def policy_summary(policy: EntitlementPolicy) -> dict[str, Any]:
    return {
        "year": policy.year,
        "base_amount": policy.base_amount,
        "cap": policy.cap,
        "enhanced_amount": policy.enhanced_amount,
        "enhanced_cap": policy.enhanced_cap,
        "supplements": dict(policy.supplements),
        "lot_lifetime_years": policy.lot_lifetime_years,
        "funder_id": policy.funder_id,
    }


async def propose_policy(
    year: int, terms: PolicyTerms, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes ``terms`` as the policy of ``year``; nothing is in force yet."""
    policy = EntitlementPolicy.model_validate({**terms.model_dump(), "year": year})
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action="policy",
        subject=f"policy:{year}",
        payload={"year": year, "policy": policy.model_dump(mode="json")},
        summary=policy_summary(policy),
    )


async def propose_allocation(
    year: int, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes the allocation of ``year`` with the policy in force."""
    check_year_open(year, ctx.now)
    policy, policy_approval = await policy_in_force(ctx.session, year)
    if await runs.running_allocation(ctx.session, year) is not None:
        raise ConflictError(
            f"an allocation for {year} is already running", code="allocation_running"
        )
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action="allocation",
        subject=f"allocation:{year}",
        payload={"year": year, "policy_approval_id": policy_approval},
        summary={
            **policy_summary(policy),
            "policy_approval_id": policy_approval,
            "accounts": await runs.count_allocatable(ctx.session),
        },
        agency_id=principal.agency_id if principal.role == "agency" else None,
    )


def target_key(target: GrantTarget | CaptureTarget) -> str:
    if isinstance(target, GrantTarget):
        return f"grant:{target.lot_id}"
    return f"capture:{target.reservation_id}"


async def propose_reversal(
    command: ReverseEntry, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes ``command``; refused at once when it could never be done."""
    state, _ = await wallets.load(command.account_id, ctx)
    if not decide(state, command, ctx.now):  # raises when it can never be done
        raise NothingToReverse("nothing to reverse")
    kind, target_id = target_key(command.target).split(":")
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action="reversal",
        subject=f"reversal:{command.account_id}:{kind}:{target_id}",
        payload=command.model_dump(mode="json"),
        summary={"account_id": str(command.account_id), "target": kind, "target_id": target_id},
    )


async def approve_policy(proposal: Proposal, principal: Principal, ctx: Context) -> dict[str, Any]:
    """The approved policy is in force (``principal`` approved it)."""
    year = int(proposal.payload["year"])
    policy = EntitlementPolicy.model_validate(proposal.payload["policy"])
    await runs.put_approved_policy(
        ctx.session,
        year,
        policy.model_dump(mode="json"),
        proposed_by=proposal.proposed_by,
        approved_by=ctx.outbox.actor(principal.actor),
        approval_id=proposal.approval_id,
    )
    return {"year": year}


async def approve_allocation(
    proposal: Proposal, principal: Principal, ctx: Context, waker: Waker
) -> dict[str, Any]:
    """The approved allocation's run is created with the policy it was proposed with; the
    job loop is woken once the approval commits."""
    year = int(proposal.payload["year"])
    check_year_open(year, ctx.now)
    policy, policy_approval = await policy_in_force(ctx.session, year)
    if policy_approval != proposal.payload["policy_approval_id"]:
        raise ConflictError(
            f"the policy of {year} changed since this allocation was proposed; refuse it "
            "and propose it again",
            code="policy_changed",
        )
    allocation_id, created = await allocation.open_run(
        ctx.session,
        year,
        proposal.proposed_by,
        policy,
        approval_id=proposal.approval_id,
        approved_by=ctx.outbox.actor(principal.actor),
        agency_id=proposal.agency_id,
    )
    if not created:
        raise ConflictError(
            f"an allocation for {year} is already running", code="allocation_running"
        )
    waker.wake_after_commit(ctx.session)
    return {"allocation_id": str(allocation_id), "year": year}


async def approve_reversal(proposal: Proposal, ctx: Context) -> dict[str, Any]:
    """The approved reversal is appended (once: the approval names its idempotency key)."""
    command = ReverseEntry.model_validate(proposal.payload)
    outcome = await wallets.execute(
        command, ctx, idempotency_key=f"approval:{proposal.approval_id}"
    )
    if not outcome.events:
        raise NothingToReverse("nothing to reverse")
    return {
        "account_id": str(command.account_id),
        "version": outcome.state.version,
        "events": [e.model_dump(mode="json") for e in outcome.events],
    }


def register(fe: FourEyes, ledger: Ledger, waker: Waker) -> None:
    """The ledger's actions, carried out in the approval's transaction."""

    @fe.action("policy")
    async def _policy(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await approve_policy(proposal, principal, ledger.context(session, events))

    @fe.action("allocation")
    async def _allocation(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        ctx = ledger.context(session, events)
        return await approve_allocation(proposal, principal, ctx, waker)

    @fe.action("reversal")
    async def _reversal(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await approve_reversal(proposal, ledger.context(session, events))


__all__ = ["open_years", "propose_allocation", "propose_policy", "propose_reversal", "register"]
