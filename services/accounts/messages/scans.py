"""The accounts service's message jobs: the scan that finds the facts a clock makes (a
consent deadline near, credit about to expire) and the sender (:mod:`shared.mail`).

The scan runs every ``mail_scan_seconds`` (hourly by default); each fact is queued once
whatever the number of scans, since its key names the proposal and its deadline, or the lot
and its expiry date. A proposal answered (or expired) meanwhile gets no reminder; a lot
whose free credit is all reserved or spent gets no notice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.messages import Messenger, moment, money, stamp
from services.accounts.store import messages as store

log = logging.getLogger(__name__)


async def remind(session: AsyncSession, messenger: Messenger, now: datetime) -> int:
    """Queue the reminders of proposals whose deadline is within the lead time."""
    lead = timedelta(hours=messenger.rules.reminder_lead_hours)
    queued = 0
    for p in await store.proposals_due(session, now, now + lead):
        queued += await messenger.tell(
            session,
            p.account_id,
            "consent_reminder",
            f"consent_reminder:{p.enrolment_id}:{stamp(p.expires_at)}",
            provider_id=p.provider_id,
            starts_on=p.starts_on.isoformat(),
            ends_on=p.ends_on.isoformat(),
            enrolment_id=str(p.enrolment_id),
            deadline=moment(p.expires_at),
        )
    return queued


async def expiring(session: AsyncSession, messenger: Messenger, now: datetime) -> int:
    """Queue the notices of lots with free credit expiring within the notice period."""
    within = timedelta(days=messenger.rules.expiry_notice_days)
    queued = 0
    for lot in await store.lots_expiring(session, now, now + within):
        queued += await messenger.tell(
            session,
            lot.account_id,
            "credit_expiring",
            f"credit_expiring:{lot.lot_id}:{stamp(lot.expires_at)}",
            amount=money(lot.free, messenger.rules.currency),
            funder_id=lot.funder_id,
            expires_on=lot.expires_at.date().isoformat(),
        )
    return queued


async def scan(session: AsyncSession, messenger: Messenger, now: datetime) -> int:
    return await remind(session, messenger, now) + await expiring(session, messenger, now)
