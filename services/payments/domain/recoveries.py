"""What a provider owes back: a claim already paid (or in a payout) whose capture the ledger
reversed. A recovery is ``open`` until a payout run nets it from the provider's next payout
(``netting``, bound to that payout), ``netted`` once that payout settled; a payout that is
cancelled or fails would give its recoveries back (``open``) for the next run. (Recording
is in place; the netting by payout runs is the next step.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RecoveryStatus = Literal["open", "netting", "netted"]


@dataclass(frozen=True)
class Recovery:
    """One row of ``payments.recoveries``."""

    recovery_id: uuid.UUID
    provider_id: str
    claim_id: uuid.UUID
    amount: int
    status: RecoveryStatus
    created_at: datetime
    updated_at: datetime
    payout_id: uuid.UUID | None = None


def owed(provider_id: str, claim_id: uuid.UUID, amount: int, now: datetime) -> Recovery:
    return Recovery(
        recovery_id=uuid.uuid4(),
        provider_id=provider_id,
        claim_id=claim_id,
        amount=amount,
        status="open",
        created_at=now,
        updated_at=now,
    )
