"""What a provider owes back: a claim already paid (or in a payout) whose capture the ledger
reversed, and how payout runs recover it.

A recovery is owed in full when recorded (``outstanding`` = ``amount``). A payout run nets
the provider's recoveries, oldest first, against what the provider is owed in the run: each
netting (a :class:`Netting`, one row of ``payments.recovery_nettings``) binds part or all of
what is outstanding to one payout, never more than that payout owes, so a transfer is never
below zero and what the run cannot recover stays outstanding for the next run. The status
follows: ``open`` while something is outstanding, ``netting`` once all of it is bound to
payouts not all settled yet, ``netted`` once they are. A payout that is cancelled or fails
at the bank gives its nettings back (``live`` false): the amounts are outstanding again, for
the next run. So at any time ``outstanding`` + the live nettings = ``amount``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
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
    outstanding: int
    status: RecoveryStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Netting:
    """Part of a recovery set against one payout: ``claim_id`` is the reversed claim the
    recovery comes from; ``live`` until the payout is cancelled or fails."""

    recovery_id: uuid.UUID
    payout_id: uuid.UUID
    claim_id: uuid.UUID
    amount: int
    created_at: datetime
    live: bool = True


def owed(provider_id: str, claim_id: uuid.UUID, amount: int, now: datetime) -> Recovery:
    return Recovery(
        recovery_id=uuid.uuid4(),
        provider_id=provider_id,
        claim_id=claim_id,
        amount=amount,
        outstanding=amount,
        status="open",
        created_at=now,
        updated_at=now,
    )


Netted = tuple[Recovery, Recovery, Netting]  # before, after, the netting


def net(
    owed_in_run: int, recoveries: list[Recovery], payout_id: uuid.UUID, now: datetime
) -> list[Netted]:
    """Set ``recoveries`` (oldest first) against a payout that owes ``owed_in_run``: as
    much of each as what the payout still owes allows; what is left stays outstanding."""
    left = owed_in_run
    out: list[Netted] = []
    for recovery in sorted(recoveries, key=lambda r: (r.created_at, r.recovery_id)):
        take = min(left, recovery.outstanding)
        if take <= 0:
            break
        outstanding = recovery.outstanding - take
        after = replace(
            recovery,
            outstanding=outstanding,
            status="open" if outstanding else "netting",
            updated_at=now,
        )
        out.append(
            (
                recovery,
                after,
                Netting(recovery.recovery_id, payout_id, recovery.claim_id, take, now),
            )
        )
        left -= take
    return out


def given_back(recovery: Recovery, netting: Netting, now: datetime) -> Recovery:
    """The payout it was netted against was cancelled or failed: outstanding again."""
    outstanding = recovery.outstanding + netting.amount
    assert outstanding <= recovery.amount, (recovery, netting)
    return replace(recovery, outstanding=outstanding, status="open", updated_at=now)


def settled(recovery: Recovery, pending_elsewhere: bool, now: datetime) -> Recovery:
    """A payout it was netted against settled: ``netted`` once nothing is outstanding and
    no other payout holding part of it is still unsettled."""
    if recovery.outstanding or pending_elsewhere or recovery.status == "netted":
        return recovery
    return replace(recovery, status="netted", updated_at=now)
