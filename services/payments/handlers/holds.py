"""Held money is released by two people: an agency that manages the learner's account (or
an admin) proposes the release of a held claim or enrolment; finance approves it, and only
then is the hold lifted (in the approval's transaction).

Actions: ``claim_release`` (subject ``claim:<id>``) and ``enrolment_release`` (subject
``enrolment:<id>``); each proposal carries the managing agency, so that agency sees it.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import PaymentsError
from services.payments.handlers import Context, Payments, claims, enrolments
from services.payments.store import read_models, rows
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import NotFoundError
from shared.outbox import EventContext

CLAIM_RELEASE = "claim_release"
ENROLMENT_RELEASE = "enrolment_release"


async def _propose_release(
    row: Claim | Enrolment,
    what: str,
    key: uuid.UUID,
    summary: dict[str, Any],
    principal: Principal,
    fe: FourEyes,
    ctx: Context,
) -> Proposal:
    """``principal`` proposes lifting the hold of a held ``what``; the proposal carries the
    agency managing the learner's account, so that agency sees it."""
    if row.status != "held":
        raise PaymentsError("not_held", f"the {what} is {row.status}, not held")
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action=f"{what}_release",
        subject=f"{what}:{key}",
        payload={f"{what}_id": str(key)},
        summary={f"{what}_id": str(key), **summary},
        agency_id=await read_models.agency_of(ctx.session, row.account_id),
        provider_id=row.provider_id,
    )


async def propose_claim_release(
    claim: Claim, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes lifting the claim's hold; nothing changes until approved."""
    summary = {
        "enrolment_id": str(claim.enrolment_id),
        "provider_id": claim.provider_id,
        "milestone": claim.milestone,
        "amount": claim.amount,
        "captured": claim.captured,
        "hold_reason": claim.hold_reason,
        "attestation": claim.attestation,
        "contest_reason": claim.contest_reason,
    }
    return await _propose_release(claim, "claim", claim.claim_id, summary, principal, fe, ctx)


async def propose_enrolment_release(
    enrolment: Enrolment, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes letting the held enrolment go to the learner for consent."""
    summary = {
        "provider_id": enrolment.provider_id,
        "price": enrolment.price,
        "requested": enrolment.requested,
        "hold_reason": enrolment.hold_reason,
    }
    key = enrolment.enrolment_id
    return await _propose_release(enrolment, "enrolment", key, summary, principal, fe, ctx)


Held = TypeVar("Held", Claim, Enrolment)


async def _proposed_row(session: AsyncSession, kind: type[Held], proposal: Proposal) -> Held:
    """The claim or enrolment a release proposal names, locked (404 when it is gone)."""
    what = kind.__name__.lower()
    key = uuid.UUID(proposal.payload[f"{what}_id"])
    row = await rows.get(session, kind, key, lock=True)
    if row is None:
        raise NotFoundError(f"no {what} {key}", code=f"{what}_not_found")
    return row


def register_claim_approvals(fe: FourEyes, payments: Payments) -> None:
    """What finance's approval of a hold release does."""

    @fe.action(CLAIM_RELEASE)
    async def release_claim(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        claim = await _proposed_row(session, Claim, proposal)
        claim = await claims.release_hold(claim, payments.context(session, events))
        return {"claim_id": str(claim.claim_id), "status": claim.status}

    @fe.action(ENROLMENT_RELEASE)
    async def release_enrolment(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        enrolment = await _proposed_row(session, Enrolment, proposal)
        enrolment = await enrolments.review(enrolment, True, payments.context(session, events))
        return {"enrolment_id": str(enrolment.enrolment_id), "status": enrolment.status}
