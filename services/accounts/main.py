"""The accounts service definition: router and configuration, wired in lifespan."""

from __future__ import annotations

from services.accounts.api import MAX_IMPORT_BYTES, router
from services.accounts.handlers import AccountsConfig
from shared.service import ServiceDefinition, ServiceRuntime


def _setup(rt: ServiceRuntime) -> None:
    rt.state["config"] = AccountsConfig.from_settings(rt.settings)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="accounts",
        title="ILA accounts",
        router=router,
        setup=_setup,
        # the CSV import streams its own, larger body (checked again by the route)
        body_limits={"/v1/accounts/imports": MAX_IMPORT_BYTES},
    )
