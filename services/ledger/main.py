"""The ledger service definition: router, event handlers, four-eyes actions, background jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from services.ledger import allocation, consumers, proposals
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
    rt.state["allocation_waker"] = waker = allocation.Waker()
    rt.four_eyes = FourEyes(
        "ledger",
        rt.outbox,
        LedgerApprovalRequested,
        LedgerApprovalDecided,
        ttl=timedelta(hours=rt.settings.approval_ttl_hours),
    )
    proposals.register(rt.four_eyes, ledger, waker)
    consumers.register(rt.consumer, ledger)


async def run_allocations(rt: ServiceRuntime) -> None:
    """Run approved allocations as their approvals commit, and resume those a crash
    interrupted."""
    await allocation.allocation_worker(
        rt.sessions, rt.state["ledger"], rt.state["allocation_waker"]
    )


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="ledger",
        title="ILA ledger",
        router=router,
        setup=_setup,
        jobs=[run_allocations, sweep_forever],
        # the ledger topic is an audit source: kept forever
        topic_config={"retention.ms": "-1", "retention.bytes": "-1"},
        # sessions run as a role that may append events but never change them
        db_role="ila_ledger_app",
    )
