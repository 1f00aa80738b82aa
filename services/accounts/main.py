"""The accounts service definition: its router, its components (built in setup, at
lifespan, never at import time), the events it turns into messages to learners
(:mod:`services.accounts.messages`) and its message jobs (the scan and the sender)."""

from __future__ import annotations

import asyncio
import logging

from services.accounts import consumers
from services.accounts.api import router
from services.accounts.api.imports import MAX_IMPORT_BYTES
from services.accounts.api.register import MAX_FEED_BATCH_BYTES
from services.accounts.deps import AccountsComponents
from services.accounts.messages import scans
from shared import mail
from shared.clock import Clock
from shared.service import (
    PROJECTION_FETCH_WAIT_MS,
    ServiceDefinition,
    ServiceRuntime,
    components_of,
)

log = logging.getLogger(__name__)


def _setup(rt: ServiceRuntime) -> AccountsComponents:
    components = AccountsComponents.build(rt.settings, rt.outbox)
    consumers.register(rt.consumer, components.messenger)
    return components


def _clock(rt: ServiceRuntime) -> Clock:
    return components_of(rt, AccountsComponents).clock


async def scan_job(rt: ServiceRuntime) -> None:
    """Every ``mail_scan_seconds``: queue the reminders and expiry notices now due."""
    components = components_of(rt, AccountsComponents)
    while True:
        try:
            async with rt.uow() as session:
                await scans.scan(session, components.messenger, components.clock.now())
        except Exception:
            log.exception("accounts: the message scan failed; trying again")
        await asyncio.sleep(rt.settings.mail_scan_seconds)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="accounts",
        title="ILA accounts",
        router=router,
        setup=_setup,
        jobs=(scan_job, mail.sender_job(_clock)),
        # the CSV import streams its own, larger body (checked again by the route); the
        # register's batches of records are larger than other requests too
        body_limits={
            "/v1/accounts/imports": MAX_IMPORT_BYTES,
            "/v1/accounts/register-feed": MAX_FEED_BATCH_BYTES,
        },
        # its consumer keeps the learners' read models: no saga step waits on it
        consumer_fetch_wait_ms=PROJECTION_FETCH_WAIT_MS,
    )
