"""Expiry as events: lots past their date and reservations past their timeout.

``sweep_once`` is what ``ila ledger sweep`` runs; ``sweep_forever`` is the service's
background task. Each account is handled in its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.commands import ExpireLots, ExpireReservations
from services.ledger.handlers.wallets import Ledger
from services.ledger.store import projections
from shared.db import transaction
from shared.outbox import EventContext

log = logging.getLogger(__name__)


async def sweep_once(
    sessions: async_sessionmaker[AsyncSession], ledger: Ledger, now: datetime | None = None
) -> int:
    """Expire what is due at ``now``; return how many events were appended."""
    now = now or ledger.clock.now()
    total = 0
    async with sessions() as session:
        due = await projections.accounts_with_due_items(session, now, 10_000)
    ctx = EventContext.new("system:expiry-sweep")
    for account_id in due:
        async with transaction(sessions) as session:
            for command in (
                ExpireReservations(account_id=account_id),
                ExpireLots(account_id=account_id),
            ):
                outcome = await ledger.execute(session, command, ctx, now=now)
                total += len(outcome.events)
    return total


async def sweep_forever(
    sessions: async_sessionmaker[AsyncSession], ledger: Ledger, interval: float = 60.0
) -> None:
    while True:
        try:
            n = await sweep_once(sessions, ledger)
            if n:
                log.info("expiry sweep appended %d events", n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; retrying later")
        await asyncio.sleep(interval)
