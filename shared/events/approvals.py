"""Payload bases of the four-eyes events every service that guards money publishes.

Each such service registers its own subclasses (``ledger.ApprovalRequested``,
``payments.ApprovalDecided``...) so the events travel on its topic. They carry codes,
amounts, masked bank details and pseudonymous actors, never free text or personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from shared.events.base import Actor, Event

Decision = Literal["approved", "refused"]


class ApprovalRequested(Event):
    """Someone proposed an action that needs a second person's approval."""

    approval_id: uuid.UUID
    action: str
    subject: str
    proposed_by: Actor
    proposed_at: datetime
    expires_at: datetime
    summary: dict[str, Any]

    def aggregate_id(self) -> str:
        return self.subject


class ApprovalDecided(Event):
    """A second person approved (the action was carried out with it) or refused a proposal."""

    approval_id: uuid.UUID
    action: str
    subject: str
    decision: Decision
    proposed_by: Actor
    decided_by: Actor
    decided_at: datetime
    reason_code: str | None = None

    def aggregate_id(self) -> str:
        return self.subject
