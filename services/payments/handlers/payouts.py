"""Payout runs: every captured, unpaid claim of a provider goes into one payout with its
remittance lines; a payout is sent, then settled (claims paid) or failed (claims payable
again). Runs are serialised and take only claims in no payout, so a second run pays nothing
twice."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import store
from services.payments.domain import ELIGIBLE_PROVIDER, PaymentsError
from services.payments.handlers import Payments
from shared.events.payments import PayoutFailed, PayoutSent, PayoutSettled
from shared.outbox import EventContext

Row = dict[str, Any]


async def run_payouts(
    p: Payments,
    session: AsyncSession,
    *,
    actor: str,
    currency: str,
    execution_date: date | None,
    ctx: EventContext,
) -> Row:
    now = p.clock.now()
    await store.lock_key(session, "payments:payout-run")
    by_provider: dict[str, list[Row]] = defaultdict(list)
    for claim in await store.payable_claims(session):
        by_provider[claim["provider_id"]].append(claim)
    run_id = uuid.uuid4()
    when = execution_date or now.date()
    payouts: list[tuple[Row, list[Row]]] = []
    skipped: list[dict[str, Any]] = []
    for provider_id, claims in sorted(by_provider.items()):
        payee = await store.payee(session, provider_id)
        total = sum(c["captured"] for c in claims)
        if payee is None:
            skipped.append(
                {
                    "provider_id": provider_id,
                    "reason": "no_bank_account",
                    "claims": len(claims),
                    "amount": total,
                }
            )
            continue
        payout = {
            "payout_id": uuid.uuid4(),
            "run_id": run_id,
            "provider_id": provider_id,
            "status": "sent",
            "amount": total,
            "currency": currency,
            "creditor_name": payee["name"],
            "iban": payee["iban"],
            "bic": payee["bic"],
            "execution_date": when,
            "created_at": now,
        }
        lines = [
            {
                "payout_id": payout["payout_id"],
                "claim_id": c["claim_id"],
                "enrolment_id": c["enrolment_id"],
                "milestone": c["milestone"],
                "amount": c["captured"],
            }
            for c in claims
        ]
        payouts.append((payout, lines))
    run = {
        "run_id": run_id,
        "requested_by": actor,
        "execution_date": when,
        "payouts": len(payouts),
        "claims": sum(len(lines) for _, lines in payouts),
        "total": sum(p_["amount"] for p_, _ in payouts),
        "skipped": skipped,
        "created_at": now,
    }
    await store.insert(session, "payout_runs", run)
    events = []
    for payout, lines in payouts:
        await store.insert(session, "payouts", payout)
        for line in lines:
            await store.insert(session, "payout_lines", line)
        claim_ids = [line["claim_id"] for line in lines]
        await store.set_claims(
            session, claim_ids, status="in_payout", payout_id=payout["payout_id"], updated_at=now
        )
        events.append(
            PayoutSent(
                payout_id=payout["payout_id"],
                provider_id=payout["provider_id"],
                run_id=run_id,
                amount=payout["amount"],
                currency=currency,
                claim_ids=tuple(claim_ids),
            )
        )
    await p.outbox.add(session, events, ctx)
    return run


async def settle(p: Payments, session: AsyncSession, payout: Row, ctx: EventContext) -> Row:
    if payout["status"] == "settled":
        return payout
    if payout["status"] != "sent":
        raise PaymentsError("not_sent", f"the payout is {payout['status']}")
    now = p.clock.now()
    await store.update(session, "payouts", payout["payout_id"], status="settled", settled_at=now)
    lines = await store.payout_lines(session, payout["payout_id"])
    claim_ids = [line["claim_id"] for line in lines]
    await store.set_claims(session, claim_ids, status="paid", paid_at=now, updated_at=now)
    await p.outbox.add(
        session,
        [
            PayoutSettled(
                payout_id=payout["payout_id"],
                provider_id=payout["provider_id"],
                amount=payout["amount"],
            )
        ],
        ctx,
    )
    payout.update(status="settled", settled_at=now)
    return payout


async def fail(
    p: Payments, session: AsyncSession, payout: Row, reason: str, ctx: EventContext
) -> Row:
    if payout["status"] == "failed":
        return payout
    if payout["status"] != "sent":
        raise PaymentsError("not_sent", f"the payout is {payout['status']}")
    now = p.clock.now()
    await store.update(
        session,
        "payouts",
        payout["payout_id"],
        status="failed",
        failed_at=now,
        failure_reason=reason,
    )
    lines = await store.payout_lines(session, payout["payout_id"])
    claim_ids = [line["claim_id"] for line in lines]
    # the claims are payable again (the next run picks them up), unless the provider was
    # suspended meanwhile: then they wait for an agency like its other claims
    standing = await store.provider_status(session, payout["provider_id"], now.date())
    if standing in ELIGIBLE_PROVIDER:
        await store.set_claims(
            session, claim_ids, status="captured", payout_id=None, updated_at=now
        )
    else:
        await store.set_claims(
            session,
            claim_ids,
            status="held",
            held_from="captured",
            hold_reason="provider_suspended",
            payout_id=None,
            updated_at=now,
        )
    await p.outbox.add(
        session,
        [
            PayoutFailed(
                payout_id=payout["payout_id"], provider_id=payout["provider_id"], reason=reason
            )
        ],
        ctx,
    )
    payout.update(status="failed", failed_at=now, failure_reason=reason)
    return payout
