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
from services.ledger.handlers import allocation
from services.ledger.handlers.allocation import Waker
from services.ledger.handlers.wallets import Ledger
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
    session: AsyncSession,
    fe: FourEyes,
    principal: Principal,
    ctx: EventContext,
    year: int,
    terms: PolicyTerms,
) -> Proposal:
    policy = EntitlementPolicy.model_validate({**terms.model_dump(), "year": year})
    return await fe.propose(
        session,
        principal,
        ctx,
        action="policy",
        subject=f"policy:{year}",
        payload={"year": year, "policy": policy.model_dump(mode="json")},
        summary=policy_summary(policy),
    )


async def propose_allocation(
    session: AsyncSession, fe: FourEyes, principal: Principal, ctx: EventContext, year: int
) -> Proposal:
    check_year_open(year, fe.clock())
    policy, policy_approval = await policy_in_force(session, year)
    if await runs.running_allocation(session, year) is not None:
        raise ConflictError(
            f"an allocation for {year} is already running", code="allocation_running"
        )
    return await fe.propose(
        session,
        principal,
        ctx,
        action="allocation",
        subject=f"allocation:{year}",
        payload={"year": year, "policy_approval_id": policy_approval},
        summary={
            **policy_summary(policy),
            "policy_approval_id": policy_approval,
            "accounts": await runs.count_allocatable(session),
        },
        agency_id=principal.agency_id if principal.role == "agency" else None,
    )


def target_key(target: GrantTarget | CaptureTarget) -> str:
    if isinstance(target, GrantTarget):
        return f"grant:{target.lot_id}"
    return f"capture:{target.reservation_id}"


async def propose_reversal(
    session: AsyncSession,
    fe: FourEyes,
    ledger: Ledger,
    principal: Principal,
    ctx: EventContext,
    command: ReverseEntry,
) -> Proposal:
    state, _ = await ledger.load(session, command.account_id)
    if not decide(state, command, ledger.clock.now()):  # raises when it can never be done
        raise NothingToReverse("nothing to reverse")
    kind, target_id = target_key(command.target).split(":")
    return await fe.propose(
        session,
        principal,
        ctx,
        action="reversal",
        subject=f"reversal:{command.account_id}:{kind}:{target_id}",
        payload=command.model_dump(mode="json"),
        summary={"account_id": str(command.account_id), "target": kind, "target_id": target_id},
    )


def register(fe: FourEyes, ledger: Ledger, waker: Waker) -> None:
    """The ledger's actions, carried out in the approval's transaction."""

    @fe.action("policy")
    async def approve_policy(
        session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
    ) -> dict[str, Any]:
        year = int(proposal.payload["year"])
        policy = EntitlementPolicy.model_validate(proposal.payload["policy"])
        await runs.put_approved_policy(
            session,
            year,
            policy.model_dump(mode="json"),
            proposed_by=proposal.proposed_by,
            approved_by=principal.actor,
            approval_id=proposal.approval_id,
        )
        return {"year": year}

    @fe.action("allocation")
    async def approve_allocation(
        session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
    ) -> dict[str, Any]:
        year = int(proposal.payload["year"])
        check_year_open(year, fe.clock())
        policy, policy_approval = await policy_in_force(session, year)
        if policy_approval != proposal.payload["policy_approval_id"]:
            raise ConflictError(
                f"the policy of {year} changed since this allocation was proposed; refuse it "
                "and propose it again",
                code="policy_changed",
            )
        allocation_id, created = await allocation.open_run(
            session,
            year,
            proposal.proposed_by,
            policy,
            approval_id=proposal.approval_id,
            approved_by=principal.actor,
            agency_id=proposal.agency_id,
        )
        if not created:
            raise ConflictError(
                f"an allocation for {year} is already running", code="allocation_running"
            )
        waker.wake_after_commit(session)
        return {"allocation_id": str(allocation_id), "year": year}

    @fe.action("reversal")
    async def approve_reversal(
        session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
    ) -> dict[str, Any]:
        command = ReverseEntry.model_validate(proposal.payload)
        outcome = await ledger.execute(
            session, command, ctx, idempotency_key=f"approval:{proposal.approval_id}"
        )
        if not outcome.events:
            raise NothingToReverse("nothing to reverse")
        return {
            "account_id": str(command.account_id),
            "version": outcome.state.version,
            "events": [e.model_dump(mode="json") for e in outcome.events],
        }


__all__ = ["open_years", "propose_allocation", "propose_policy", "propose_reversal", "register"]
