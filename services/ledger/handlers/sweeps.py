"""Expiry as events: lots past their date and reservations past their timeout.

``sweep_once`` is what ``ila ledger sweep`` runs; ``sweep_forever`` is the service's
background task. Each account is handled in its own unit of work.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from services.ledger.commands import ExpireLots, ExpireReservations
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import execute
from services.ledger.store import projections
from shared.db import UnitOfWork
from shared.outbox import EventContext

log = logging.getLogger(__name__)


async def sweep_once(uow: UnitOfWork, ledger: Ledger, now: datetime | None = None) -> int:
    """Expire what is due at ``now``; return how many events were appended."""
    now = now or ledger.clock.now()
    total = 0
    async with uow() as session:
        due = await projections.accounts_with_due_items(session, now, 10_000)
    events = EventContext.new("system:expiry-sweep")
    for account_id in due:
        async with uow() as session:
            ctx = ledger.context(session, events, now=now)
            for command in (
                ExpireReservations(account_id=account_id),
                ExpireLots(account_id=account_id),
            ):
                outcome = await execute(command, ctx)
                total += len(outcome.events)
    return total


async def sweep_forever(uow: UnitOfWork, ledger: Ledger, interval: float = 60.0) -> None:
    while True:
        try:
            n = await sweep_once(uow, ledger)
            if n:
                log.info("expiry sweep appended %d events", n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; retrying later")
        await asyncio.sleep(interval)
