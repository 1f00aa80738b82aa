"""Background work of payments: expiring enrolments the learner never confirmed, and
closing the attestation window of claims the learner left alone (they become payable)."""

from __future__ import annotations

import asyncio
import logging

from services.payments.handlers import Payments, attestation, enrolments
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


async def expire_once(rt: ServiceRuntime) -> int:
    """Expire every proposal past its confirmation deadline; return how many."""
    payments: Payments = rt.state["payments"]
    total = 0
    while True:
        async with rt.uow() as session:
            n = await enrolments.expire_due(payments, session)
        total += n
        if n == 0:
            return total


async def lapse_once(rt: ServiceRuntime) -> int:
    """Close every attestation window that passed uncontested; return how many."""
    payments: Payments = rt.state["payments"]
    total = 0
    while True:
        async with rt.uow() as session:
            n = await attestation.lapse_due(payments, session)
        total += n
        if n == 0:
            return total


async def expire_forever(rt: ServiceRuntime) -> None:
    payments: Payments = rt.state["payments"]
    while True:
        try:
            n = await expire_once(rt)
            if n:
                log.info("expired %d unconfirmed enrolments", n)
            n = await lapse_once(rt)
            if n:
                log.info("%d claims payable: their attestation window passed", n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payments sweep failed; retrying later")
        await asyncio.sleep(payments.config.sweep_interval_seconds)
