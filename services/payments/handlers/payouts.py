"""Payout runs with four eyes: a run binds every captured, unpaid claim (of the caller's
providers) to one payout per provider, in a ``proposed`` state, and proposes its release; a
second person of the finance role releases it (the payouts are ``sent`` and their SEPA files
become available) or refuses it (the payouts are ``cancelled`` and their claims payable
again). A sent payout is settled (claims paid) or failed with the bank's ISO 20022 return
reason (claims payable again, re-paid later under the same end-to-end ids). The moves are
:mod:`services.payments.domain.payouts`'s; this module loads, stores and stages events.

A party paid is a provider, or an employer paid wage compensation for its employees'
training leave (payee ``employer:<funder_id>``, :mod:`.leave`): an employer has no
accreditation to lose, so only the provider's standing can cancel a payout.

Runs are serialised and take only claims in no payout; the partial unique index
``payout_lines_claim_once`` keeps a claim in at most one live payout whatever happens.

Each payout nets the provider's open recoveries (:mod:`.recoveries`): its ``amount`` is what
its claims owe less what it ``recovered``, never below zero, and what it cannot recover stays
outstanding for the next run. A provider who owes back at least what the run owes it gets a
payout netted in full (``amount`` 0): its claims are in it and are paid by the netting, so the
recovery shrinks by exactly what they were worth and nothing is transferred or counted twice.
Holding the claims instead would keep the provider's money and the fund's claim to it both
open, to be matched later; netting them settles both at once. Released, such a payout sends
nothing to the bank and is settled at once (no file, nothing a bank could return). A payout
cancelled or failed gives what it recovered back to the recoveries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import sepa
from services.payments.commands import FailPayout, RunPayouts
from services.payments.domain import payouts as rules
from services.payments.domain.claims import Claim
from services.payments.domain.errors import PaymentsError
from services.payments.domain.leave import is_employer_payee
from services.payments.domain.payees import payee_standing
from services.payments.domain.payouts import Payout, PayoutLine, PayoutRun, RunMove
from services.payments.domain.recoveries import Netted
from services.payments.domain.views import eligible
from services.payments.handlers import Context, Payments, recoveries
from services.payments.store import claims as claim_store
from services.payments.store import payees as payee_store
from services.payments.store import payouts as store
from services.payments.store import read_models, rows
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.events.base import Event
from shared.events.payments import PayoutHeld
from shared.outbox import EventContext

RELEASE = "payout_release"


def run_subject(run_id: uuid.UUID | str) -> str:
    return f"payout_run:{run_id}"


@dataclass(frozen=True)
class RunProposed:
    """A run as assembled, with its release proposal (none for an empty run)."""

    run: PayoutRun
    approval: dict[str, Any] | None


async def run_payouts(
    cmd: RunPayouts, principal: Principal, fe: FourEyes, ctx: Context, *, currency: str
) -> RunProposed:
    """Assemble ``principal``'s run and propose its release; nothing is sent yet. An
    agency's run takes only the claims of the providers it registered. A run that would
    neither pay nor hold anything is refused (409 ``nothing_to_pay``) and leaves no trace."""
    session, now = ctx.session, ctx.now
    await rows.lock_key(session, "payments:payout-run")
    for lapsed in await store.lapsed_runs(session, now):
        await _end_run(lapsed, "expire", "release_expired", ctx)
    agency_id = principal.agency_id if principal.role == "agency" else None
    by_provider: dict[str, list[Claim]] = defaultdict(list)
    for claim in await claim_store.payable_claims_in_scope(session, agency_id):
        by_provider[claim.provider_id].append(claim)
    run_id = uuid.uuid4()
    when = cmd.execution_date or now.date()
    payouts: list[tuple[Payout, list[PayoutLine], list[Netted]]] = []
    skipped: list[dict[str, Any]] = []
    events: list[Event] = []
    for provider_id, claims in sorted(by_provider.items()):
        payee = await payee_store.payee(session, provider_id)
        total = sum(c.captured for c in claims)
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
            source=payee.source,
            effective_at=payee.effective_at,
            verified_at=payee.verified_at,
            cooling_off=ctx.config.payee_cooling_off,
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
        _, provider_agency = await read_models.provider_agency(session, provider_id)
        payout_id = uuid.uuid4()
        netted = await recoveries.plan(session, provider_id, total, payout_id, now)
        recovered = sum(netting.amount for _, _, netting in netted)
        payout = Payout(
            payout_id=payout_id,
            run_id=run_id,
            provider_id=provider_id,
            agency_id=provider_agency,
            status="proposed",
            amount=total - recovered,
            recovered=recovered,
            currency=currency,
            creditor_name=payee.name,
            iban=payee.iban,
            bic=payee.bic,
            execution_date=when,
            created_at=now,
        )
        lines = [
            PayoutLine(
                payout_id=payout.payout_id,
                claim_id=c.claim_id,
                enrolment_id=c.enrolment_id,
                milestone=c.milestone,
                amount=c.captured,
            )
            for c in claims
        ]
        payouts.append((payout, lines, netted))
    if not payouts and not skipped:
        raise PaymentsError(
            "nothing_to_pay", "no captured, unpaid claim of a provider in your scope to pay"
        )
    run = PayoutRun(
        run_id=run_id,
        requested_by=principal.actor,
        agency_id=agency_id,
        status=rules.PENDING_RUN if payouts else "empty",
        execution_date=when,
        payouts=len(payouts),
        claims=sum(len(lines) for _, lines, _ in payouts),
        total=sum(payout.amount for payout, _, _ in payouts),
        recovered=sum(payout.recovered for payout, _, _ in payouts),
        skipped=skipped,
        created_at=now,
    )
    await rows.insert(session, run)
    for payout, lines, netted in payouts:
        await rows.insert(session, payout)
        for line in lines:
            await rows.insert(session, line)
        await recoveries.record(session, netted)
        # bound to this payout: no other run takes them while the release waits
        await claim_store.move_claims(
            session,
            [line.claim_id for line in lines],
            "bind",
            payout_id=payout.payout_id,
            updated_at=now,
        )
    await ctx.emit(*events)
    if not payouts:
        return RunProposed(run, None)
    proposal = await fe.propose(
        session,
        principal,
        ctx.events,
        action=RELEASE,
        subject=run_subject(run_id),
        payload={"run_id": str(run_id)},
        summary={
            "run_id": str(run_id),
            "payouts": run.payouts,
            "claims": run.claims,
            "total": run.total,
            "recovered": run.recovered,
            "currency": currency,
        },
        agency_id=agency_id,
    )
    proposed = replace(run, approval_id=proposal.approval_id)
    await rows.save(session, run, proposed)
    return RunProposed(proposed, proposal.public(now))


async def release(proposal: Proposal, ctx: Context) -> dict[str, Any]:
    """The approved release: each payout of the run is sent, unless its provider was
    suspended or its bank details changed since the run was assembled (then it is
    cancelled and its claims wait for the next run). A payout netted in full sends nothing
    to the bank and is settled at once."""
    session, now = ctx.session, ctx.now
    run_id = uuid.UUID(str(proposal.payload["run_id"]))
    run = await rows.get(session, PayoutRun, run_id, lock=True)
    if run is None or run.status != rules.PENDING_RUN:
        raise PaymentsError("run_not_pending", "the payout run does not wait for release")
    sent, total, recovered = 0, 0, 0
    for payout in await store.payouts_of_run(session, run_id):
        if payout.status != "proposed":
            continue
        payee = await payee_store.payee(session, payout.provider_id)
        if not await _payable_party(session, payout.provider_id, now.date()):
            await _cancel(payout, "provider_suspended", ctx)
            continue
        if payee is None or payee.iban != payout.iban:
            await _cancel(payout, "payee_changed", ctx)
            continue
        lines = await store.payout_lines(session, payout.payout_id)
        nettings = await recoveries.live_nettings(session, payout.payout_id)
        after = await ctx.apply(
            payout,
            rules.release(payout, tuple(line.claim_id for line in lines), tuple(nettings)),
        )
        if after.amount == 0:
            await settle(after, ctx)
        sent += 1
        total += payout.amount
        recovered += payout.recovered
    await rows.save(session, run, rules.run_ended(run, "release", now))
    return {"run_id": str(run_id), "sent": sent, "total": total, "recovered": recovered}


async def refused(proposal: Proposal, ctx: Context) -> dict[str, Any]:
    """The release was refused: the run's payouts are cancelled, their claims payable."""
    run_id = uuid.UUID(str(proposal.payload["run_id"]))
    cancelled = await _end_run(run_id, "refuse", "release_refused", ctx)
    return {"run_id": str(run_id), "cancelled": cancelled}


async def _end_run(run_id: uuid.UUID, move: RunMove, reason: str, ctx: Context) -> int:
    session = ctx.session
    run = await rows.get(session, PayoutRun, run_id, lock=True)
    if run is None or run.status != rules.PENDING_RUN:
        return 0
    cancelled = 0
    for payout in await store.payouts_of_run(session, run_id):
        if payout.status == "proposed":
            await _cancel(payout, reason, ctx)
            cancelled += 1
    await rows.save(session, run, rules.run_ended(run, move, ctx.now))
    return cancelled


async def _cancel(payout: Payout, reason: str, ctx: Context) -> None:
    after, events = rules.cancel(payout, reason)
    await rows.save(ctx.session, payout, after)
    await _free_claims(payout, ctx)
    await ctx.emit(*events)


async def _free_claims(payout: Payout, ctx: Context) -> None:
    """The payout's claims leave it: payable again, unless the provider was suspended
    meanwhile (then they wait for a release like its other held claims); what it recovered
    is owed again."""
    session, now = ctx.session, ctx.now
    await recoveries.give_back(payout, ctx)
    await store.end_lines(session, payout.payout_id)
    lines = await store.payout_lines(session, payout.payout_id)
    claim_ids = [line.claim_id for line in lines]
    if await _payable_party(session, payout.provider_id, now.date()):
        await claim_store.move_claims(session, claim_ids, "unbind", payout_id=None, updated_at=now)
    else:
        await claim_store.move_claims(
            session,
            claim_ids,
            "unbind_held",
            held_from="captured",
            hold_reason="provider_suspended",
            payout_id=None,
            updated_at=now,
        )


async def _payable_party(session: AsyncSession, payee_id: str, today: date) -> bool:
    """Whether the payout's party may be paid: a provider in good standing, or an employer
    (paid wage compensation for training leave; it has no accreditation to lose)."""
    if is_employer_payee(payee_id):
        return True
    return eligible(await read_models.provider_status(session, payee_id, today))


async def settle(payout: Payout, ctx: Context) -> Payout:
    """The bank executed the transfer: its claims are paid (settling twice changes nothing)."""
    session, now = ctx.session, ctx.now
    after, events = rules.settle(payout, now)
    if not events:
        return payout
    await rows.save(session, payout, after)
    lines = await store.payout_lines(session, payout.payout_id)
    claim_ids = [line.claim_id for line in lines]
    await claim_store.move_claims(session, claim_ids, "pay", paid_at=now, updated_at=now)
    await recoveries.settled(after, ctx)
    await ctx.emit(*events)
    return after


async def fail(payout: Payout, cmd: FailPayout, ctx: Context) -> Payout:
    """The bank returned the transfer with ``cmd.reason_code``: the claims are payable
    again. A settled payout cannot fail (409); failing twice with the same code changes
    nothing."""
    after, events = rules.fail(payout, cmd.reason_code, ctx.now)
    if not events:
        return payout
    await rows.save(ctx.session, payout, after)
    await _free_claims(payout, ctx)
    await ctx.emit(*events)
    return after


async def payout_file(payout: Payout, ctx: Context) -> bytes:
    """The pain.001 file of a released payout; before release there is nothing to send
    (409 ``payout_not_released``), nor for a cancelled payout, nor for one netted in full
    (409 ``payout_netted``)."""
    rules.check_file_available(payout)
    lines = await store.payout_lines(ctx.session, payout.payout_id)
    nettings = await recoveries.live_nettings(ctx.session, payout.payout_id)
    return sepa.pain001(ctx.config, payout, lines, nettings)


def register_actions(fe: FourEyes, p: Payments) -> None:
    """What approving or refusing a payout run's release does."""

    @fe.action(RELEASE)
    async def _release(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await release(proposal, p.context(session, events))

    @fe.on_refusal(RELEASE)
    async def _refuse(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await refused(proposal, p.context(session, events))
