"""The four services by name: their definitions, imported when asked for (the CLI, the
all-in-one app and the tests start them from here)."""

from __future__ import annotations

import importlib

from shared.service import ServiceDefinition
from shared.settings import PORTAL, SERVICES


def definition(name: str) -> ServiceDefinition:
    if name not in (*SERVICES, PORTAL):
        raise KeyError(f"unknown service {name!r}; one of {', '.join((*SERVICES, PORTAL))}")
    module = importlib.import_module(f"services.{name}.main")
    result: ServiceDefinition = module.definition()
    return result


def all_definitions() -> list[ServiceDefinition]:
    return [definition(name) for name in SERVICES]


def everything() -> list[ServiceDefinition]:
    """The four services and the people's pages: what the all-in-one server runs."""
    return [*all_definitions(), definition(PORTAL)]
