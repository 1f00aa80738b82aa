"""The learner's word on a claim: attest the training was given, or contest the claim.

A claim the rules approved or held waits for the learner for ``attestation_days``: an
attested claim is payable once captured; a contested one is held until its release is
proposed by the managing agency and approved by finance; a claim the learner left alone
becomes payable when the window closes (:func:`lapse_due`, run by the background job).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import domain, store
from services.payments.domain import ContestReason
from services.payments.handlers import Payments
from services.payments.handlers.claims import change
from shared.events.payments import ClaimAttested, ClaimContested
from shared.outbox import EventContext

Row = dict[str, Any]


def _ref(claim: Row) -> dict[str, Any]:
    return {
        "claim_id": claim["claim_id"],
        "enrolment_id": claim["enrolment_id"],
        "provider_id": claim["provider_id"],
        "milestone": claim["milestone"],
    }


async def attest(p: Payments, session: AsyncSession, claim: Row, ctx: EventContext) -> Row:
    """The learner confirms the training was given (asked twice, answers the same)."""
    if claim["attestation"] == "attested":
        return claim
    now = p.clock.now()
    domain.check_attestation_open(
        status=claim["status"],
        attestation=claim["attestation"],
        attest_until=claim["attest_until"],
        now=now,
    )
    await change(session, claim, attestation="attested", attested_at=now, updated_at=now)
    await p.outbox.add(session, [ClaimAttested(**_ref(claim))], ctx)
    return claim


async def contest(
    p: Payments, session: AsyncSession, claim: Row, reason: ContestReason, ctx: EventContext
) -> Row:
    """The learner contests the claim: it is held, whatever it was, until resolved."""
    if claim["attestation"] == "contested":
        return claim
    now = p.clock.now()
    domain.check_attestation_open(
        status=claim["status"],
        attestation=claim["attestation"],
        attest_until=claim["attest_until"],
        now=now,
    )
    fields: dict[str, Any] = {
        "attestation": "contested",
        "contested_at": now,
        "contest_reason": reason,
        "updated_at": now,
    }
    if claim["status"] != "held":
        fields.update(status="held", held_from=claim["status"], hold_reason="learner_contested")
    await change(session, claim, **fields)
    await p.outbox.add(session, [ClaimContested(**_ref(claim), reason_code=reason)], ctx)
    return claim


async def lapse_due(p: Payments, session: AsyncSession, limit: int = 500) -> int:
    """Claims whose window passed without a word from the learner become payable."""
    return await store.lapse_attestations(session, p.clock.now(), limit)
