"""The ledger service definition: its router, its setup (the components it builds, its
event handlers, its four-eyes actions) and its background jobs. Nothing is built at import
time."""

from __future__ import annotations

from datetime import timedelta

from services.ledger import consumers
from services.ledger.api import router
from services.ledger.audit import checkpoints as signed_checkpoints
from services.ledger.deps import LedgerComponents
from services.ledger.handlers import (
    Ledger,
    allocation,
    budget_payouts,
    cofunding,
    funders,
    proposals,
    sweeps,
)
from services.ledger.handlers.group import GroupCommitter
from shared.approvals import FourEyes
from shared.clock import Clock
from shared.events.ledger import LedgerApprovalDecided, LedgerApprovalRequested
from shared.service import ServiceDefinition, ServiceRuntime, components_of


def _setup(rt: ServiceRuntime) -> LedgerComponents:
    clock = Clock()
    ledger = Ledger(rt.outbox, clock)
    waker = allocation.Waker()
    four_eyes = FourEyes(
        "ledger",
        rt.outbox,
        LedgerApprovalRequested,
        LedgerApprovalDecided,
        ttl=timedelta(hours=rt.settings.approval_ttl_hours),
        clock=clock.now,
    )
    rt.four_eyes = four_eyes  # the approvals routes of shared.approvals_api read it there
    proposals.register(four_eyes, ledger, waker)
    funders.register(four_eyes, ledger)
    cofunding.register(four_eyes, ledger)
    consumers.register(rt.consumer, ledger)
    budget_payouts.register(rt.consumer, ledger)
    committer = GroupCommitter(
        rt.uow,
        ledger,
        size=rt.settings.ledger_batch_size,
        window=rt.settings.ledger_batch_window_ms / 1000,
    )
    return LedgerComponents(
        ledger=ledger, clock=clock, four_eyes=four_eyes, waker=waker, committer=committer
    )


async def run_group_commits(rt: ServiceRuntime) -> None:
    """Decide the commands that arrive together (HTTP grants) in one transaction each."""
    await components_of(rt, LedgerComponents).committer.serve()


async def run_allocations(rt: ServiceRuntime) -> None:
    """Run approved allocations as their approvals commit, and resume those a crash
    interrupted."""
    parts = components_of(rt, LedgerComponents)
    await allocation.allocation_worker(rt.uow, parts.ledger, parts.waker)


async def sweep_expiries(rt: ServiceRuntime) -> None:
    """Expire lots and reservations as they fall due."""
    await sweeps.sweep_forever(rt.uow, components_of(rt, LedgerComponents).ledger)


async def checkpoint(rt: ServiceRuntime) -> None:
    """Sign a checkpoint of the store's head every N events or T seconds."""
    settings = rt.settings
    await signed_checkpoints.checkpoint_forever(
        rt.sessions,
        settings.ledger_checkpoint_key.encode(),
        every_events=settings.ledger_checkpoint_every_events,
        every_seconds=settings.ledger_checkpoint_every_seconds,
    )


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="ledger",
        title="ILA ledger",
        router=router,
        setup=_setup,
        jobs=[run_allocations, sweep_expiries, checkpoint, run_group_commits],
        # the ledger topic is an audit source: kept forever
        topic_config={"retention.ms": "-1", "retention.bytes": "-1"},
        # sessions run as a role that may append events but never change them
        db_role="ila_ledger_app",
    )
