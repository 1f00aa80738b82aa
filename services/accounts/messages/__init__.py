"""Messages to learners: the accounts service owns their e-mail address (in the encrypted
personal data), so it tells them what the other services' events mean for them.

Which facts (and which of them the learner may turn off, ``message-preferences``):

- ``proposal_waiting``: a provider's proposal waits for their consent, with its deadline;
  always sent (the learner's consent is what stops an enrolment made without them);
- ``consent_reminder``: the deadline is near (``consent_reminder_lead_hours``) and the
  proposal is still unanswered; optional;
- ``credit_expiring``: credit of a lot expires within ``credit_expiry_notice_days``; optional;
- ``credential_issued``: a credential was issued to them; optional;
- ``claim_contested``: the acknowledgement of their contest of a claim; always sent (a
  receipt of what they did).

Each is queued once per fact (:mod:`shared.mail`); the account's language preference picks
the texts. An account without an e-mail address, or erased, gets none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.handlers.personal import Keyring, personal_data
from services.accounts.store import accounts as accounts_store
from services.accounts.store import messages as store
from shared import mail
from shared.settings import Settings

SCHEMA = "accounts"
TEMPLATES = Path(__file__).resolve().parent / "templates"

Kind = Literal[
    "proposal_waiting",
    "consent_reminder",
    "credit_expiring",
    "credential_issued",
    "claim_contested",
]
# the preference that turns a kind off; the others are always sent
OPTIONAL: dict[str, str] = {
    "consent_reminder": "consent_reminder",
    "credit_expiring": "credit_expiry",
    "credential_issued": "credential_issued",
}


@dataclass(frozen=True)
class MailRules:
    currency: str = "EUR"
    reminder_lead_hours: int = 48
    expiry_notice_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> MailRules:
        return cls(
            currency=settings.currency,
            reminder_lead_hours=settings.consent_reminder_lead_hours,
            expiry_notice_days=settings.credit_expiry_notice_days,
        )


def money(amount: int, currency: str) -> str:
    """Minor units as ``1234.50 EUR``."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{units}.{cents:02d} {currency}"


def moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def stamp(value: datetime) -> str:
    """A deadline in a fact key."""
    return value.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Messenger:
    """Queues a learner's messages (inside the caller's transaction)."""

    keyring: Keyring
    rules: MailRules
    templates: mail.Templates

    @classmethod
    def build(cls, settings: Settings, keyring: Keyring) -> Messenger:
        return cls(keyring, MailRules.from_settings(settings), mail.Templates(TEMPLATES))

    async def tell(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        kind: Kind,
        fact_key: str,
        **context: Any,
    ) -> bool:
        """Queue the ``kind`` message of a fact for the account's holder, unless the fact
        has its message already, they turned the kind off, or there is no address; True
        when queued."""
        if await mail.has_message(session, SCHEMA, fact_key):
            return False
        prefs = await store.preferences(session, account_id)
        wanted = OPTIONAL.get(kind)
        if wanted is not None and not getattr(prefs, wanted):
            return False
        row = await accounts_store.get(session, account_id)
        if row is None or row.erased_at is not None:
            return False
        personal = await personal_data(session, self.keyring, row)
        address = (personal or {}).get("email")
        if not address:
            return False
        subject, body = self.templates.render(
            kind, prefs.language, currency=self.rules.currency, **context
        )
        return await mail.queue(
            session,
            SCHEMA,
            mail.Outgoing(
                fact_key=fact_key,
                kind=kind,
                person=str(account_id),
                recipient=address,
                language=prefs.language,
                subject=subject,
                body=body,
            ),
        )
