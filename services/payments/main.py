"""The payments service definition: router, event handlers, the expiry job.

``definition(config=..., clock=...)`` lets a deployment or a test choose the rules and the
clock; by default the rules come from ``ILA_PAYMENTS_*`` variables.
"""

from __future__ import annotations

from services.payments import consumers
from services.payments.api import router
from services.payments.config import Clock, PaymentsConfig
from services.payments.handlers import Payments
from services.payments.jobs import expire_forever
from shared.service import ServiceDefinition, ServiceRuntime


def definition(
    config: PaymentsConfig | None = None, clock: Clock | None = None
) -> ServiceDefinition:
    def setup(rt: ServiceRuntime) -> None:
        payments = Payments(rt.outbox, config or PaymentsConfig(), clock or Clock())
        rt.state["payments"] = payments
        consumers.register(rt.consumer, payments)

    return ServiceDefinition(
        name="payments",
        title="ILA payments",
        router=router,
        setup=setup,
        jobs=[expire_forever],
    )
