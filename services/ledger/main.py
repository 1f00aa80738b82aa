"""The ledger service definition: router, event handlers, background sweeps."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from services.ledger import allocation, consumers, store
from services.ledger.api import router
from services.ledger.handlers import Ledger
from services.ledger.sweeps import sweep_forever
from shared.approvals import FourEyes
from shared.events.ledger import LedgerApprovalDecided, LedgerApprovalRequested
from shared.service import ServiceDefinition, ServiceRuntime

log = logging.getLogger(__name__)


def _setup(rt: ServiceRuntime) -> None:
    ledger = Ledger(rt.outbox)
    rt.state["ledger"] = ledger
    rt.four_eyes = FourEyes(
        "ledger",
        rt.outbox,
        LedgerApprovalRequested,
        LedgerApprovalDecided,
        ttl=timedelta(hours=rt.settings.approval_ttl_hours),
    )
    consumers.register(rt.consumer, ledger)


async def resume_allocations(rt: ServiceRuntime) -> None:
    """Finish allocation runs a crash interrupted."""
    async with rt.sessions() as session:
        running = await store.running_allocations(session)
    for allocation_id in running:
        log.info("resuming allocation %s", allocation_id)
        await allocation.run_allocation(rt.sessions, rt.state["ledger"], allocation_id)
    await asyncio.Event().wait()


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="ledger",
        title="ILA ledger",
        router=router,
        setup=_setup,
        jobs=[resume_allocations, sweep_forever],
        # the ledger topic is an audit source: kept forever
        topic_config={"retention.ms": "-1", "retention.bytes": "-1"},
        # sessions run as a role that may append events but never change them
        db_role="ila_ledger_app",
    )
