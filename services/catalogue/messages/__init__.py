"""Messages to providers: the catalogue holds the provider's contact e-mail (registered
with the provider, never in an event), so it tells them what the payments service's events
mean for them:

- ``payout_sent`` (``payments.PayoutSent``): a transfer was issued, its amount and claims;
- ``claim_contested`` (``payments.ClaimContested``): a learner contested one of their
  claims, which is held until the agency decides.

One message per fact (:mod:`shared.mail`): a payout told in several parts, or an event
delivered twice, queues one message. A provider without a contact e-mail gets none. Texts
in English (providers have no language preference yet).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.store import providers as store
from shared import mail
from shared.events import Envelope
from shared.events.payments import ClaimContested, PayoutSent
from shared.inbox import EventConsumer

SCHEMA = "catalogue"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def money(amount: int, currency: str) -> str:
    units, cents = divmod(amount, 100)
    return f"{units}.{cents:02d} {currency}"


async def tell(
    session: AsyncSession,
    templates: mail.Templates,
    provider_id: str,
    kind: str,
    fact_key: str,
    **context: Any,
) -> bool:
    """Queue a message to the provider, once per fact; True when queued."""
    if await mail.has_message(session, SCHEMA, fact_key):
        return False
    try:
        provider = uuid.UUID(provider_id)
    except ValueError:
        return False
    address = await store.contact_email(session, provider)
    if not address:
        return False
    language = mail.DEFAULT_LANGUAGE
    subject, body = templates.render(kind, language, **context)
    return await mail.queue(
        session,
        SCHEMA,
        mail.Outgoing(fact_key, kind, provider_id, address, language, subject, body),
    )


def register(consumer: EventConsumer) -> None:
    templates = mail.Templates(TEMPLATES)

    async def payout_sent(session: AsyncSession, envelope: Envelope, e: PayoutSent) -> None:
        await tell(
            session,
            templates,
            e.provider_id,
            "payout_sent",
            f"payout_sent:{e.payout_id}",
            payout_id=str(e.payout_id),
            amount=money(e.amount, e.currency),
            recovered=money(e.recovered, e.currency) if e.recovered else "",
            claims=len(e.claim_ids) if e.parts == 1 else f"{len(e.claim_ids)}+",
        )

    async def contested(session: AsyncSession, envelope: Envelope, e: ClaimContested) -> None:
        await tell(
            session,
            templates,
            e.provider_id,
            "claim_contested",
            f"claim_contested:{e.claim_id}",
            claim_id=str(e.claim_id),
            enrolment_id=str(e.enrolment_id),
            milestone=e.milestone,
            reason_code=e.reason_code,
        )

    consumer.on(PayoutSent)(payout_sent)
    consumer.on(ClaimContested)(contested)
