"""Payout runs with four eyes: a run binds every captured, unpaid claim (of the caller's
providers) to one payout per provider, in a ``proposed`` state, and proposes its release; a
second person of the finance role releases it (the payouts are ``sent`` and their SEPA files
become available) or refuses it (the payouts are ``cancelled`` and their claims payable
again). A sent payout is settled (claims paid) or failed with the bank's ISO 20022 return
reason (claims payable again, re-paid later under the same end-to-end ids).

Runs are serialised and take only claims in no payout; the partial unique index
``payout_lines_claim_once`` keeps a claim in at most one live payout whatever happens.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import payout_store, sepa, store
from services.payments.domain import ELIGIBLE_PROVIDER, PaymentsError
from services.payments.handlers import Payments
from services.payments.payout_rules import next_status, payee_standing, return_reason
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.events.payments import (
    PayoutCancelled,
    PayoutFailed,
    PayoutHeld,
    PayoutSent,
    PayoutSettled,
)
from shared.outbox import EventContext

Row = dict[str, Any]
RELEASE = "payout_release"


def run_subject(run_id: uuid.UUID | str) -> str:
    return f"payout_run:{run_id}"


async def run_payouts(
    p: Payments,
    fe: FourEyes,
    session: AsyncSession,
    principal: Principal,
    *,
    currency: str,
    execution_date: date | None,
    ctx: EventContext,
) -> Row:
    """Assemble a run and propose its release; nothing is sent yet. An agency's run takes
    only the claims of the providers it registered. A run that would neither pay nor hold
    anything is refused (409 ``nothing_to_pay``) and leaves no trace."""
    now = p.clock.now()
    await store.lock_key(session, "payments:payout-run")
    for lapsed in await payout_store.lapsed_runs(session, now):
        await _end_run(p, session, lapsed, "expired", "release_expired", ctx)
    agency_id = principal.agency_id if principal.role == "agency" else None
    by_provider: dict[str, list[Row]] = defaultdict(list)
    for claim in await payout_store.payable_claims_in_scope(session, agency_id):
        by_provider[claim["provider_id"]].append(claim)
    run_id = uuid.uuid4()
    when = execution_date or now.date()
    payouts: list[tuple[Row, list[Row]]] = []
    skipped: list[dict[str, Any]] = []
    events: list[Any] = []
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
        standing = payee_standing(
            source=payee["source"],
            effective_at=payee["effective_at"],
            verified_at=payee["verified_at"],
            cooling_off=p.config.payee_cooling_off,
            now=now,
        )
        if not standing.payable:
            assert standing.reason is not None and standing.held_until is not None
            skipped.append(
                {
                    "provider_id": provider_id,
                    "reason": standing.reason,
                    "held_until": standing.held_until.isoformat(),
                    "claims": len(claims),
                    "amount": total,
                }
            )
            events.append(
                PayoutHeld(
                    provider_id=provider_id,
                    run_id=run_id,
                    reason=standing.reason,
                    held_until=standing.held_until,
                    claims=len(claims),
                    amount=total,
                )
            )
            continue
        _, provider_agency = await payout_store.provider_agency(session, provider_id)
        payout = {
            "payout_id": uuid.uuid4(),
            "run_id": run_id,
            "provider_id": provider_id,
            "agency_id": provider_agency,
            "status": "proposed",
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
    if not payouts and not skipped:
        raise PaymentsError(
            "nothing_to_pay", "no captured, unpaid claim of a provider in your scope to pay"
        )
    run: Row = {
        "run_id": run_id,
        "requested_by": principal.actor,
        "agency_id": agency_id,
        "status": "proposed" if payouts else "empty",
        "execution_date": when,
        "payouts": len(payouts),
        "claims": sum(len(lines) for _, lines in payouts),
        "total": sum(p_["amount"] for p_, _ in payouts),
        "skipped": skipped,
        "created_at": now,
    }
    await store.insert(session, "payout_runs", run)
    for payout, lines in payouts:
        await store.insert(session, "payouts", payout)
        for line in lines:
            await store.insert(session, "payout_lines", line)
        # bound to this payout: no other run takes them while the release waits
        await store.set_claims(
            session,
            [line["claim_id"] for line in lines],
            status="in_payout",
            payout_id=payout["payout_id"],
            updated_at=now,
        )
    await p.outbox.add(session, events, ctx)
    run["approval"] = None
    if payouts:
        proposal = await fe.propose(
            session,
            principal,
            ctx,
            action=RELEASE,
            subject=run_subject(run_id),
            payload={"run_id": str(run_id)},
            summary={
                "run_id": str(run_id),
                "payouts": run["payouts"],
                "claims": run["claims"],
                "total": run["total"],
                "currency": currency,
            },
            agency_id=agency_id,
        )
        await payout_store.update_run(session, run_id, approval_id=proposal.approval_id)
        run["approval_id"] = proposal.approval_id
        run["approval"] = proposal.public(now)
    return run


async def release(
    p: Payments, session: AsyncSession, proposal: Proposal, ctx: EventContext
) -> dict[str, Any]:
    """The approved release: each payout of the run is sent, unless its provider was
    suspended or its bank details changed since the run was assembled (then it is
    cancelled and its claims wait for the next run)."""
    now = p.clock.now()
    run_id = uuid.UUID(str(proposal.payload["run_id"]))
    run = await payout_store.run_for_update(session, run_id)
    if run is None or run["status"] != "proposed":
        raise PaymentsError("run_not_pending", "the payout run does not wait for release")
    sent, total, events = 0, 0, []
    for payout in await store.payouts_of_run(session, run_id):
        if payout["status"] != "proposed":
            continue
        standing = await store.provider_status(session, payout["provider_id"], now.date())
        payee = await store.payee(session, payout["provider_id"])
        if standing not in ELIGIBLE_PROVIDER:
            await _cancel(p, session, payout, "provider_suspended", ctx)
            continue
        if payee is None or payee["iban"] != payout["iban"]:
            await _cancel(p, session, payout, "payee_changed", ctx)
            continue
        await store.update(session, "payouts", payout["payout_id"], status="sent")
        lines = await store.payout_lines(session, payout["payout_id"])
        events.append(
            PayoutSent(
                payout_id=payout["payout_id"],
                provider_id=payout["provider_id"],
                run_id=run_id,
                amount=payout["amount"],
                currency=payout["currency"],
                claim_ids=tuple(line["claim_id"] for line in lines),
            )
        )
        sent += 1
        total += payout["amount"]
    await payout_store.update_run(session, run_id, status="released", decided_at=now)
    await p.outbox.add(session, events, ctx)
    return {"run_id": str(run_id), "sent": sent, "total": total}


async def refused(
    p: Payments, session: AsyncSession, proposal: Proposal, ctx: EventContext
) -> dict[str, Any]:
    """The release was refused: the run's payouts are cancelled, their claims payable."""
    run_id = uuid.UUID(str(proposal.payload["run_id"]))
    cancelled = await _end_run(p, session, run_id, "refused", "release_refused", ctx)
    return {"run_id": str(run_id), "cancelled": cancelled}


async def _end_run(
    p: Payments,
    session: AsyncSession,
    run_id: uuid.UUID,
    status: str,
    reason: str,
    ctx: EventContext,
) -> int:
    run = await payout_store.run_for_update(session, run_id)
    if run is None or run["status"] != "proposed":
        return 0
    cancelled = 0
    for payout in await store.payouts_of_run(session, run_id):
        if payout["status"] == "proposed":
            await _cancel(p, session, payout, reason, ctx)
            cancelled += 1
    await payout_store.update_run(session, run_id, status=status, decided_at=p.clock.now())
    return cancelled


async def _cancel(
    p: Payments, session: AsyncSession, payout: Row, reason: str, ctx: EventContext
) -> None:
    next_status(payout["status"], "cancel")
    await store.update(
        session, "payouts", payout["payout_id"], status="cancelled", cancel_reason=reason
    )
    await _free_claims(p, session, payout)
    await p.outbox.add(
        session,
        [
            PayoutCancelled(
                payout_id=payout["payout_id"],
                provider_id=payout["provider_id"],
                run_id=payout["run_id"],
                reason=reason,
            )
        ],
        ctx,
    )


async def _free_claims(p: Payments, session: AsyncSession, payout: Row) -> None:
    """The payout's claims leave it: payable again, unless the provider was suspended
    meanwhile (then they wait for a release like its other held claims)."""
    now = p.clock.now()
    await payout_store.end_lines(session, payout["payout_id"])
    lines = await store.payout_lines(session, payout["payout_id"])
    claim_ids = [line["claim_id"] for line in lines]
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


async def settle(p: Payments, session: AsyncSession, payout: Row, ctx: EventContext) -> Row:
    """The bank executed the transfer: its claims are paid (settling twice changes nothing)."""
    if payout["status"] == "settled":
        return payout
    next_status(payout["status"], "settle")
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
    p: Payments, session: AsyncSession, payout: Row, reason_code: str, ctx: EventContext
) -> Row:
    """The bank returned the transfer with ``reason_code``: the claims are payable again.
    A settled payout cannot fail (409); failing twice with the same code changes nothing."""
    reason = return_reason(reason_code)
    if payout["status"] == "failed" and payout["failure_reason"] == reason:
        return payout
    next_status(payout["status"], "fail")
    now = p.clock.now()
    await store.update(
        session,
        "payouts",
        payout["payout_id"],
        status="failed",
        failed_at=now,
        failure_reason=reason,
    )
    await _free_claims(p, session, payout)
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


async def payout_file(p: Payments, session: AsyncSession, payout: Row) -> bytes:
    """The pain.001 file of a released payout; before release there is nothing to send
    (409 ``payout_not_released``), nor for a cancelled payout."""
    if payout["status"] in ("proposed", "cancelled"):
        raise PaymentsError(
            "payout_not_released",
            f"the payout is {payout['status']}: its file exists once its run is released",
        )
    lines = await store.payout_lines(session, payout["payout_id"])
    return sepa.pain001(p.config, payout, lines)


def register_actions(fe: FourEyes, p: Payments) -> None:
    """What approving or refusing a payout run's release does."""

    @fe.action(RELEASE)
    async def _release(
        session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
    ) -> dict[str, Any]:
        return await release(p, session, proposal, ctx)

    @fe.on_refusal(RELEASE)
    async def _refuse(
        session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
    ) -> dict[str, Any]:
        return await refused(p, session, proposal, ctx)
