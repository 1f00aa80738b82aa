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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.handlers.personal import Keyring, opened
from services.accounts.store import accounts as accounts_store
from services.accounts.store import keys
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
class Tell:
    """One fact to tell an account's holder: its kind, its key (once per fact) and what
    its texts say."""

    account_id: uuid.UUID
    kind: Kind
    fact_key: str
    context: dict[str, Any]


DEFAULTS = store.Preferences()


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
        return await self.tell_many(session, [Tell(account_id, kind, fact_key, context)]) == 1

    async def tell_many(self, session: AsyncSession, tells: Sequence[Tell]) -> int:
        """:meth:`tell` of each of ``tells``, in a few statements whatever their number (a
        fact told twice: its first telling); how many were queued."""
        first: dict[str, Tell] = {}
        for t in tells:
            first.setdefault(t.fact_key, t)
        known = await mail.told(session, SCHEMA, list(first))
        todo = [t for key, t in first.items() if key not in known]
        if not todo:
            return 0
        people = sorted({t.account_id for t in todo})
        chosen = await store.preferences_of(session, people)
        rows = await accounts_store.get_many(session, people)
        wrapped = await keys.wrapped_keys(session, people)
        messages, addresses = [], {}
        for t in todo:
            prefs = chosen.get(t.account_id, DEFAULTS)
            wanted = OPTIONAL.get(t.kind)
            if wanted is not None and not getattr(prefs, wanted):
                continue
            row = rows.get(t.account_id)
            if row is None or row.erased_at is not None:
                continue
            if t.account_id not in addresses:
                personal = opened(self.keyring, row, wrapped.get(t.account_id))
                addresses[t.account_id] = (personal or {}).get("email")
            address = addresses[t.account_id]
            if not address:
                continue
            subject, body = self.templates.render(
                t.kind, prefs.language, currency=self.rules.currency, **t.context
            )
            messages.append(
                mail.Outgoing(
                    fact_key=t.fact_key,
                    kind=t.kind,
                    person=str(t.account_id),
                    recipient=address,
                    language=prefs.language,
                    subject=subject,
                    body=body,
                )
            )
        return await mail.queue_many(session, SCHEMA, messages)
