"""The learner's word on a claim: attest the training was given, or contest the claim.

A claim the rules approved or held waits for the learner for ``attestation_days``: an
attested claim is payable once captured; a contested one is held until its release is
proposed by the managing agency and approved by finance; a claim the learner left alone
becomes payable when the window closes (:func:`lapse_due`, run by the background job).
"""

from __future__ import annotations

from services.payments.domain import attestation as rules
from services.payments.domain.claims import Claim, ContestReason
from services.payments.handlers import Context
from services.payments.store import claims as store


async def attest(claim: Claim, ctx: Context) -> Claim:
    """The learner confirms the training was given (asked twice, answers the same)."""
    return await ctx.apply(claim, rules.attest(claim, ctx.now))


async def contest(claim: Claim, reason: ContestReason, ctx: Context) -> Claim:
    """The learner contests the claim: it is held, whatever it was, until resolved."""
    return await ctx.apply(claim, rules.contest(claim, reason, ctx.now))


async def lapse_due(ctx: Context, limit: int = 500) -> int:
    """Claims whose window passed without a word from the learner become payable."""
    return await store.lapse_attestations(ctx.session, ctx.now, limit)
