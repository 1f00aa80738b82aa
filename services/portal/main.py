"""The portal's definition: the people's pages, served beside the four services by
``ila run`` and on their own by ``ila serve portal``."""

from __future__ import annotations

from services.portal.api import build_router
from services.portal.deps import PortalComponents
from shared.service import ServiceDefinition, ServiceRuntime


def _setup(rt: ServiceRuntime) -> PortalComponents:
    return PortalComponents.build(rt)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="portal",
        title="ILA people's pages",
        router=build_router(),
        setup=_setup,
    )
