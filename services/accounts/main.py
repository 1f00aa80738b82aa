"""The accounts service definition: router and configuration, wired in lifespan."""

from __future__ import annotations

from services.accounts.api import router
from services.accounts.handlers import AccountsConfig
from shared.service import ServiceDefinition, ServiceRuntime


def _setup(rt: ServiceRuntime) -> None:
    s = rt.settings
    rt.state["config"] = AccountsConfig(
        pepper=s.national_id_pepper, min_age=s.min_working_age, max_age=s.max_working_age
    )


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="accounts", title="ILA accounts", router=router, setup=_setup)
