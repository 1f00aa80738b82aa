"""The payments service definition: router, event handlers, the background sweeps.

``definition(config=..., clock=...)`` lets a deployment or a test choose the rules and the
clock; by default the rules come from ``ILA_PAYMENTS_*`` variables. Its setup builds the
:class:`~services.payments.deps.Components` (kept as ``rt.components``) and nothing is
built at import time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.payments import consumers
from services.payments.api import router
from services.payments.config import PaymentsConfig
from services.payments.deps import Components
from services.payments.handlers import Payments, leave, payees, payouts
from services.payments.handlers.group import ClaimCommitter, ConfirmCommitter
from services.payments.handlers.holds import register_claim_approvals
from services.payments.handlers.jobs import expire_forever
from shared.approvals import FourEyes
from shared.clock import Clock
from shared.events.payments import PaymentsApprovalDecided, PaymentsApprovalRequested
from shared.service import ServiceDefinition, ServiceRuntime, components_of


async def run_group_commits(rt: ServiceRuntime) -> None:
    """Decide the claims, and the confirmations, that arrive together in one transaction
    a batch."""
    parts = components_of(rt, Components)
    await asyncio.gather(parts.claims.serve(), parts.confirmations.serve())


def definition(
    config: PaymentsConfig | None = None, clock: Clock | None = None
) -> ServiceDefinition:
    def setup(rt: ServiceRuntime) -> Components:
        payments = Payments(rt.outbox, config or PaymentsConfig(), clock or Clock())
        four_eyes = FourEyes(
            "payments",
            rt.outbox,
            PaymentsApprovalRequested,
            PaymentsApprovalDecided,
            ttl=timedelta(hours=rt.settings.approval_ttl_hours),
            clock=payments.clock.now,
        )
        # the shared approvals routes find the service's proposals here
        rt.four_eyes = four_eyes
        register_claim_approvals(four_eyes, payments)
        payouts.register_actions(four_eyes, payments)
        payees.register_actions(four_eyes, payments)
        consumers.register(rt.consumer, payments)
        leave.register(rt.consumer, payments)
        size = rt.settings.payments_batch_size
        window = rt.settings.payments_batch_window_ms / 1000
        claims = ClaimCommitter(rt.uow, payments, size=size, window=window)
        confirmations = ConfirmCommitter(rt.uow, payments, size=size, window=window)
        return Components(payments, four_eyes, claims, confirmations)

    return ServiceDefinition(
        name="payments",
        title="ILA payments",
        router=router,
        setup=setup,
        jobs=[expire_forever, run_group_commits],
    )
