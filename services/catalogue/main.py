"""The catalogue service definition (providers, courses, the public registry, credentials).

``setup`` builds its components (configuration, the credential issuer's key, the clock;
see :mod:`services.catalogue.deps`) when the app starts, never at import time, and
subscribes its consumers (:mod:`services.catalogue.consumers`, and the messages to providers
of :mod:`services.catalogue.messages`, sent by its mail job).
"""

from __future__ import annotations

from services.catalogue import consumers, messages
from services.catalogue.api import build_router
from services.catalogue.api.verify_page import MAX_BODY_BYTES as VERIFY_PAGE_MAX_BYTES
from services.catalogue.deps import CatalogueComponents
from shared import mail
from shared.clock import Clock
from shared.service import (
    PROJECTION_FETCH_WAIT_MS,
    ServiceDefinition,
    ServiceRuntime,
    components_of,
)

VERIFY_MAX_BYTES = 64 * 1024


def _setup(rt: ServiceRuntime) -> CatalogueComponents:
    components = CatalogueComponents.build(rt)
    consumers.register(rt.consumer, components)
    messages.register(rt.consumer)
    return components


def _clock(rt: ServiceRuntime) -> Clock:
    return components_of(rt, CatalogueComponents).clock


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="catalogue",
        title="ILA catalogue",
        router=build_router(),
        setup=_setup,
        # the messages to providers (services.catalogue.messages)
        jobs=(mail.sender_job(_clock),),
        # the public verification takes a credential (a few KB), never megabytes
        # (the page reads an upload's form itself and answers a wrong, large file with the
        # page, so its limit is higher)
        body_limits={
            "/v1/credentials/verify": VERIFY_MAX_BYTES,
            "/verify": VERIFY_PAGE_MAX_BYTES,
        },
        # its consumer keeps read models and issues credentials: no saga step waits on it
        consumer_fetch_wait_ms=PROJECTION_FETCH_WAIT_MS,
    )
