"""The catalogue service definition (providers, courses, the public registry, credentials).

``setup`` builds its components (configuration, the credential issuer's key, the clock;
see :mod:`services.catalogue.deps`) when the app starts, never at import time, and
subscribes its consumers (:mod:`services.catalogue.consumers`).
"""

from __future__ import annotations

from services.catalogue import consumers
from services.catalogue.api import build_router
from services.catalogue.api.verify_page import MAX_BODY_BYTES as VERIFY_PAGE_MAX_BYTES
from services.catalogue.deps import CatalogueComponents
from shared.service import ServiceDefinition, ServiceRuntime

VERIFY_MAX_BYTES = 64 * 1024


def _setup(rt: ServiceRuntime) -> CatalogueComponents:
    components = CatalogueComponents.build(rt)
    consumers.register(rt.consumer, components)
    return components


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="catalogue",
        title="ILA catalogue",
        router=build_router(),
        setup=_setup,
        # the public verification takes a credential (a few KB), never megabytes
        # (the page reads an upload's form itself and answers a wrong, large file with the
        # page, so its limit is higher)
        body_limits={
            "/v1/credentials/verify": VERIFY_MAX_BYTES,
            "/verify": VERIFY_PAGE_MAX_BYTES,
        },
    )
