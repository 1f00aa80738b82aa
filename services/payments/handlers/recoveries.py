"""Recoveries netted by payouts (:mod:`services.payments.domain.recoveries`): a run sets the
provider's open recoveries against the payout it assembles; a payout cancelled or failed
gives them back; a payout settled recovers them for good."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import recoveries as rules
from services.payments.domain.payouts import Payout
from services.payments.handlers import Context
from services.payments.store import recoveries as store
from services.payments.store import rows


async def plan(
    session: AsyncSession, provider_id: str, owed: int, payout_id: uuid.UUID, now: datetime
) -> list[rules.Netted]:
    """What the provider's open recoveries take from a payout owing ``owed`` (nothing is
    written yet: the payout must exist first, see :func:`record`)."""
    return rules.net(owed, await store.open_recoveries(session, provider_id), payout_id, now)


async def record(session: AsyncSession, netted: list[rules.Netted]) -> None:
    for before, after, netting in netted:
        await rows.save(session, before, after)
        await store.add_netting(session, netting)


async def _netted_by(
    session: AsyncSession, payout_id: uuid.UUID
) -> AsyncIterator[tuple[rules.Netting, rules.Recovery]]:
    """The recoveries the payout nets (live nettings only), each read as its turn comes."""
    for netting in await live_nettings(session, payout_id):
        recovery = await store.recovery(session, netting.recovery_id)
        assert recovery is not None
        yield netting, recovery


async def give_back(payout: Payout, ctx: Context) -> None:
    """The payout was cancelled or failed: what it recovered is outstanding again."""
    session = ctx.session
    async for netting, recovery in _netted_by(session, payout.payout_id):
        await rows.save(session, recovery, rules.given_back(recovery, netting, ctx.now))
    await store.end_nettings(session, payout.payout_id)


async def settled(payout: Payout, ctx: Context) -> None:
    """The payout settled: the recoveries it netted in full are ``netted``."""
    session = ctx.session
    async for _, recovery in _netted_by(session, payout.payout_id):
        pending = await store.pending_elsewhere(session, recovery.recovery_id, payout.payout_id)
        await rows.save(session, recovery, rules.settled(recovery, pending, ctx.now))


async def live_nettings(session: AsyncSession, payout_id: uuid.UUID) -> list[rules.Netting]:
    return [n for n in await store.nettings_of(session, payout_id) if n.live]
