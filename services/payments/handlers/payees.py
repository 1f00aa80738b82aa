"""Payee bank details belong to the provider: only the provider itself or the agency that
registered it proposes new details; a second person of the finance role approves them
(four eyes, action ``payee``, subject ``payee:<provider_id>``); the change is an event with
the old and new IBAN masked. Changed details are paid only after the cooling-off period,
unless finance recorded a verification of payee with the bank.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import sepa
from services.payments.commands import SetPayee, VerifyPayee
from services.payments.domain.errors import PaymentsError, Unknown
from services.payments.domain.payees import CHANGED, Payee, mask_iban
from services.payments.handlers import Context, Payments
from services.payments.store import payees as store
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import InvalidError
from shared.events.payments import PayeeChanged, PayeeVerified
from shared.outbox import EventContext

CHANGE = "payee"


def payee_subject(provider_id: str) -> str:
    return f"payee:{provider_id}"


def not_found(provider_id: str) -> Unknown:
    # the same answer for a provider that does not exist and one outside the caller's scope
    return Unknown("payee_not_found", f"no payee {provider_id}")


def checked_account(iban: str, bic: str | None) -> tuple[str, str | None]:
    try:
        return sepa.normalise_bank_account(iban, bic)
    except sepa.InvalidBankAccount as exc:
        raise InvalidError(
            f"invalid bank account: {exc}", code="invalid_bank_account", field="iban"
        ) from exc


async def propose_change(
    provider_id: str,
    cmd: SetPayee,
    principal: Principal,
    fe: FourEyes,
    ctx: Context,
    *,
    agency_id: str | None,
) -> Proposal:
    """New bank details wait for a second person; nothing changes yet. ``agency_id``: the
    agency that registered the provider (the caller was found in scope to propose)."""
    iban, bic = checked_account(cmd.iban, cmd.bic)
    current = await store.payee(ctx.session, provider_id)
    return await fe.propose(
        ctx.session,
        principal,
        ctx.events,
        action=CHANGE,
        subject=payee_subject(provider_id),
        payload={"provider_id": provider_id, "name": cmd.name, "iban": iban, "bic": bic},
        summary={
            "provider_id": provider_id,
            "iban": mask_iban(iban),
            "previous_iban": mask_iban(current.iban) if current else None,
        },
        agency_id=agency_id,
        provider_id=provider_id,
    )


async def apply_change(proposal: Proposal, principal: Principal, ctx: Context) -> dict[str, Any]:
    """The approved change (``principal`` approved it): the new details apply, paid only
    after the cooling-off period."""
    session, now = ctx.session, ctx.now
    payload = proposal.payload
    provider_id = str(payload["provider_id"])
    current = await store.payee(session, provider_id, lock=True)
    await store.put_payee(
        session,
        provider_id,
        CHANGED,
        name=str(payload["name"]),
        iban=str(payload["iban"]),
        bic=payload.get("bic"),
        actor=proposal.proposed_by,
        now=now,
    )
    payable_from = now + ctx.config.payee_cooling_off
    await ctx.emit(
        PayeeChanged(
            provider_id=provider_id,
            previous_iban=mask_iban(current.iban) if current else None,
            iban=mask_iban(str(payload["iban"])),
            approval_id=proposal.approval_id,
            proposed_by=proposal.proposed_by,
            approved_by=ctx.outbox.actor(principal.actor),
            payable_from=payable_from,
        )
    )
    return {
        "provider_id": provider_id,
        "iban": mask_iban(str(payload["iban"])),
        "payable_from": payable_from.isoformat(),
    }


async def verify(provider_id: str, cmd: VerifyPayee, ctx: Context) -> Payee:
    """Record finance's verification-of-payee check of the *current* details (the IBAN
    checked must be the one in force, else 409 ``payee_changed``); the context's actor
    checked. Only a ``match`` lets payouts go before the cooling-off period ends."""
    session = ctx.session
    current = await store.payee(session, provider_id, lock=True)
    if current is None:
        raise not_found(provider_id)
    checked, _ = checked_account(cmd.iban, None)
    if checked != current.iban:
        raise PaymentsError(
            "payee_changed", "the IBAN checked is not the provider's current bank account"
        )
    if cmd.result == "match":
        await store.verify_payee(session, provider_id, ctx.actor, ctx.now)
    verified = PayeeVerified(provider_id=provider_id, iban=mask_iban(checked), result=cmd.result)
    await ctx.emit(verified)
    payee = await store.payee(session, provider_id)
    assert payee is not None
    return payee


def register_actions(fe: FourEyes, p: Payments) -> None:
    @fe.action(CHANGE)
    async def _apply(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        return await apply_change(proposal, principal, p.context(session, events))
