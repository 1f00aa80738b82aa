"""Background work of payments: expiring enrolments the learner never confirmed (or the
ledger never answered), and closing the attestation window of claims the learner left alone
(they become payable), and lapsing leave requests their employer left unanswered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.payments.deps import Components
from services.payments.handlers import Context, attestation, enrolments, leave
from shared.outbox import EventContext
from shared.service import ServiceRuntime, components_of

log = logging.getLogger(__name__)


async def _drain(rt: ServiceRuntime, actor: str, step: Callable[[Context], Awaitable[int]]) -> int:
    """Run ``step`` as ``actor`` in one transaction after another until it finds nothing;
    how many."""
    payments = components_of(rt, Components).payments
    total = 0
    while True:
        async with rt.uow() as session:
            n = await step(payments.context(session, EventContext.new(actor)))
        total += n
        if n == 0:
            return total


async def expire_once(rt: ServiceRuntime) -> int:
    """Expire every proposal past its confirmation deadline; return how many."""
    return await _drain(rt, "system:enrolment-expiry", enrolments.expire_due)


async def time_out_once(rt: ServiceRuntime) -> int:
    """Expire every enrolment the ledger left unanswered past the timeout; how many."""
    return await _drain(rt, "system:reserving-timeout", enrolments.time_out_due)


async def lapse_once(rt: ServiceRuntime) -> int:
    """Close every attestation window that passed uncontested; return how many."""
    return await _drain(rt, "system:attestation-lapse", attestation.lapse_due)


async def lapse_leave_once(rt: ServiceRuntime) -> int:
    """Lapse every leave request its employer left unanswered past the deadline."""
    return await _drain(rt, "system:leave-lapse", leave.lapse_due)


async def expire_forever(rt: ServiceRuntime) -> None:
    config = components_of(rt, Components).config
    while True:
        try:
            n = await expire_once(rt)
            if n:
                log.info("expired %d unconfirmed enrolments", n)
            n = await time_out_once(rt)
            if n:
                log.warning("%d enrolments got no answer from the ledger in time", n)
            n = await lapse_once(rt)
            if n:
                log.info("%d claims payable: their attestation window passed", n)
            n = await lapse_leave_once(rt)
            if n:
                log.info("%d leave requests lapsed unanswered", n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payments sweep failed; retrying later")
        await asyncio.sleep(config.sweep_interval_seconds)
