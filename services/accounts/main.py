"""The accounts service definition: its router and its components, built in setup (at
lifespan, never at import time)."""

from __future__ import annotations

from services.accounts import consumers
from services.accounts.api import router
from services.accounts.api.imports import MAX_IMPORT_BYTES
from services.accounts.deps import AccountsComponents
from shared.service import ServiceDefinition, ServiceRuntime


def _setup(rt: ServiceRuntime) -> AccountsComponents:
    # payments' enrolments feed the statistics' trainings
    consumers.register(rt.consumer)
    return AccountsComponents.build(rt.settings, rt.outbox)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="accounts",
        title="ILA accounts",
        router=router,
        setup=_setup,
        # the CSV import streams its own, larger body (checked again by the route)
        body_limits={"/v1/accounts/imports": MAX_IMPORT_BYTES},
    )
