"""Held money is released by two people: an agency that manages the learner's account (or
an admin) proposes the release of a held claim or enrolment; finance approves it, and only
then is the hold lifted (in the approval's transaction).

Actions: ``claim_release`` (subject ``claim:<id>``) and ``enrolment_release`` (subject
``enrolment:<id>``); each proposal carries the managing agency, so that agency sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

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


def _must_be_held(status: str, what: str) -> None:
    if status != "held":
        raise PaymentsError("not_held", f"the {what} is {status}, not held")


async def propose_claim_release(
    claim: Claim, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes lifting the claim's hold; nothing changes until approved."""
    _must_be_held(claim.status, "claim")
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action=CLAIM_RELEASE,
        subject=f"claim:{claim.claim_id}",
        payload={"claim_id": str(claim.claim_id)},
        summary={
            "claim_id": str(claim.claim_id),
            "enrolment_id": str(claim.enrolment_id),
            "provider_id": claim.provider_id,
            "milestone": claim.milestone,
            "amount": claim.amount,
            "captured": claim.captured,
            "hold_reason": claim.hold_reason,
            "attestation": claim.attestation,
            "contest_reason": claim.contest_reason,
        },
        agency_id=await read_models.agency_of(ctx.session, claim.account_id),
        provider_id=claim.provider_id,
    )


async def propose_enrolment_release(
    enrolment: Enrolment, principal: Principal, fe: FourEyes, ctx: Context
) -> Proposal:
    """``principal`` proposes letting the held enrolment go to the learner for consent."""
    _must_be_held(enrolment.status, "enrolment")
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action=ENROLMENT_RELEASE,
        subject=f"enrolment:{enrolment.enrolment_id}",
        payload={"enrolment_id": str(enrolment.enrolment_id)},
        summary={
            "enrolment_id": str(enrolment.enrolment_id),
            "provider_id": enrolment.provider_id,
            "price": enrolment.price,
            "requested": enrolment.requested,
            "hold_reason": enrolment.hold_reason,
        },
        agency_id=await read_models.agency_of(ctx.session, enrolment.account_id),
        provider_id=enrolment.provider_id,
    )


def register_claim_approvals(fe: FourEyes, payments: Payments) -> None:
    """What finance's approval of a hold release does."""

    @fe.action(CLAIM_RELEASE)
    async def release_claim(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        claim_id = uuid.UUID(proposal.payload["claim_id"])
        claim = await rows.get(session, Claim, claim_id, lock=True)
        if claim is None:
            raise NotFoundError(f"no claim {claim_id}", code="claim_not_found")
        claim = await claims.release_hold(claim, payments.context(session, events))
        return {"claim_id": str(claim_id), "status": claim.status}

    @fe.action(ENROLMENT_RELEASE)
    async def release_enrolment(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        enrolment_id = uuid.UUID(proposal.payload["enrolment_id"])
        enrolment = await rows.get(session, Enrolment, enrolment_id, lock=True)
        if enrolment is None:
            raise NotFoundError(f"no enrolment {enrolment_id}", code="enrolment_not_found")
        enrolment = await enrolments.review(enrolment, True, payments.context(session, events))
        return {"enrolment_id": str(enrolment_id), "status": enrolment.status}
