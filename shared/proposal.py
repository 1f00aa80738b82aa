"""A four-eyes proposal as its table keeps it (:mod:`shared.approvals`), and what
approvers and proposers see of it. Who proposed and who decided are pseudonyms, as the
events name them; ``proposer_sub`` is the proposer's keyed subject, never shown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["pending", "approved", "refused", "expired"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "refused", "expired")


@dataclass(frozen=True)
class Proposal:
    approval_id: uuid.UUID
    action: str
    subject: str
    payload: dict[str, Any]
    summary: dict[str, Any]
    agency_id: str | None
    provider_id: str | None
    proposed_by: str
    proposer_sub: str
    proposed_at: datetime
    expires_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason_code: str | None
    result: dict[str, Any] | None

    def status_at(self, now: datetime) -> Status:
        if self.status == "pending" and now >= self.expires_at:
            return "expired"
        return self.status  # type: ignore[return-value]

    def public(self, now: datetime) -> dict[str, Any]:
        """What approvers and proposers see (no proposer subject, no raw payload)."""
        return {
            "approval_id": str(self.approval_id),
            "action": self.action,
            "subject": self.subject,
            "summary": self.summary,
            "status": self.status_at(now),
            "proposed_by": self.proposed_by,
            "proposed_at": self.proposed_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason_code": self.reason_code,
            "result": self.result,
        }


__all__ = ["STATUSES", "Proposal", "Status"]
