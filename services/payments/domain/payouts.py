"""Payouts and their runs as state machines, and the bank's return reasons.

A run binds every payable claim of the caller's providers to one payout per provider and
waits for a second person: ``proposed``, then ``released`` (its payouts are sent),
``refused`` or ``expired`` (its payouts are cancelled); a run that only held or skipped
providers is ``empty``. A payout is ``proposed`` with its run, then ``sent`` (released) or
``cancelled`` (the release was refused or expired: its claims are payable again); a sent
payout is ``settled`` (its claims are paid) or ``failed`` (the bank returned it with an ISO
20022 reason code; its claims are payable again, under the same end-to-end ids). Settled
and failed are final.

The legal moves are written once in :data:`TRANSITIONS` and :data:`RUN_TRANSITIONS`;
decisions take the frozen :class:`Payout` and return the new payout with its events.

A payout owes its provider the sum of its lines (claims); the provider's recoveries netted
against it (:mod:`services.payments.domain.recoveries`) are ``recovered``, and ``amount`` is
the transfer: owed minus recovered, never below zero. A payout netted in full (``amount`` 0)
sends nothing to the bank: released, it is settled at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from services.payments.domain.errors import Invalid, PaymentsError
from services.payments.domain.machine import target
from services.payments.domain.recoveries import Netting
from shared.events.base import Event
from shared.events.payments import (
    CLAIMS_PER_PART,
    PayoutCancelled,
    PayoutFailed,
    PayoutSent,
    PayoutSettled,
    RecoveryNetted,
)

PayoutStatus = Literal["proposed", "sent", "settled", "failed", "cancelled"]
PayoutMove = Literal["release", "cancel", "settle", "fail"]
RunStatus = Literal["empty", "proposed", "released", "refused", "expired"]
RunMove = Literal["release", "refuse", "expire"]

# the legal moves, written once: a move, the statuses it leaves, the status it reaches
TRANSITIONS: dict[PayoutMove, tuple[frozenset[PayoutStatus], PayoutStatus]] = {
    "release": (frozenset({"proposed"}), "sent"),
    "cancel": (frozenset({"proposed"}), "cancelled"),
    "settle": (frozenset({"sent"}), "settled"),
    "fail": (frozenset({"sent"}), "failed"),
}
RUN_TRANSITIONS: dict[RunMove, tuple[frozenset[RunStatus], RunStatus]] = {
    "release": (frozenset({"proposed"}), "released"),
    "refuse": (frozenset({"proposed"}), "refused"),
    "expire": (frozenset({"proposed"}), "expired"),
}
# a payout in these statuses holds its claims (they are in no other payout)
LIVE: tuple[PayoutStatus, ...] = ("proposed", "sent", "settled")
# a run waiting for its release
PENDING_RUN: RunStatus = "proposed"

# ISO 20022 external status/return reason codes a bank gives for a credit transfer it
# returned or rejected (ExternalReturnReason1Code / ExternalStatusReason1Code, the subset
# used in SEPA credit transfer R-transactions)
RETURN_REASONS: frozenset[str] = frozenset(
    {
        "AC01",  # incorrect account number
        "AC04",  # closed account number
        "AC06",  # blocked account
        "AC13",  # invalid debtor account type
        "AG01",  # transaction forbidden
        "AG02",  # invalid bank operation code
        "AM04",  # insufficient funds
        "AM05",  # duplication
        "AM09",  # wrong amount
        "BE04",  # missing creditor address
        "CNOR",  # creditor bank is not registered
        "CUST",  # requested by customer
        "DNOR",  # debtor bank is not registered
        "DUPL",  # duplicate payment
        "ED05",  # settlement failed
        "FF01",  # invalid file format
        "FRAD",  # fraudulent origin
        "MD07",  # end customer deceased
        "MS02",  # not specified reason, customer generated
        "MS03",  # not specified reason, agent generated
        "RC01",  # bank identifier incorrect
        "RR01",  # missing debtor account or identification
        "RR02",  # missing debtor name or address
        "RR03",  # missing creditor name or address
        "RR04",  # regulatory reason
        "TECH",  # technical problem
    }
)


@dataclass(frozen=True)
class Payout:
    """A payout as stored (one row of ``payments.payouts``)."""

    payout_id: uuid.UUID
    run_id: uuid.UUID
    provider_id: str
    status: PayoutStatus
    amount: int
    currency: str
    creditor_name: str
    iban: str
    bic: str | None
    execution_date: date
    created_at: datetime
    agency_id: str | None = None
    failure_reason: str | None = None
    cancel_reason: str | None = None
    settled_at: datetime | None = None
    failed_at: datetime | None = None
    recovered: int = 0

    @property
    def owed(self) -> int:
        """What its claims owe the provider: the transfer plus what it recovered."""
        return self.amount + self.recovered


@dataclass(frozen=True)
class PayoutLine:
    """One claim of a payout (remittance): live unless the payout failed or was cancelled."""

    payout_id: uuid.UUID
    claim_id: uuid.UUID
    enrolment_id: uuid.UUID
    milestone: str
    amount: int
    live: bool = True


@dataclass(frozen=True)
class PayoutRun:
    """A payout run as stored (one row of ``payments.payout_runs``)."""

    run_id: uuid.UUID
    requested_by: str
    status: RunStatus
    execution_date: date
    payouts: int
    claims: int
    total: int
    skipped: list[dict[str, Any]]
    created_at: datetime
    agency_id: str | None = None
    approval_id: uuid.UUID | None = None
    decided_at: datetime | None = None
    recovered: int = 0


Decided = tuple[Payout, list[Event]]


def next_status(status: str, move: PayoutMove) -> PayoutStatus:
    """The payout's status after ``move``, or a 409 naming why it cannot happen."""
    allowed, after = TRANSITIONS[move]
    if status in allowed:
        return after
    if status == "proposed":
        raise PaymentsError(
            "payout_not_released", "the payout's run was not released yet: nothing was sent"
        )
    if status == "settled":
        raise PaymentsError("payout_settled", "the payout is settled: the bank paid it")
    if status == "cancelled":
        raise PaymentsError("payout_cancelled", "the payout was cancelled before release")
    raise PaymentsError("payout_final", f"the payout is {status}")


def _moved(payout: Payout, move: PayoutMove, **changes: Any) -> Payout:
    return replace(payout, status=next_status(payout.status, move), **changes)


def run_ended(run: PayoutRun, move: RunMove, now: datetime) -> PayoutRun:
    """The run's release was decided (or expired undecided)."""
    status = target(RUN_TRANSITIONS, "payout run", run.status, move)
    return replace(run, status=status, decided_at=now)


def release(
    payout: Payout, claim_ids: tuple[uuid.UUID, ...], nettings: tuple[Netting, ...] = ()
) -> Decided:
    """The run is released: the payout is sent to the bank (the events list the claims and
    the recoveries netted, in parts of at most :data:`CLAIMS_PER_PART` of each)."""
    after = _moved(payout, "release")
    netted = tuple(
        RecoveryNetted(recovery_id=n.recovery_id, claim_id=n.claim_id, amount=n.amount)
        for n in nettings
    )
    parts = max(1, -(-len(claim_ids) // CLAIMS_PER_PART), -(-len(netted) // CLAIMS_PER_PART))
    sent: list[Event] = [
        PayoutSent(
            payout_id=after.payout_id,
            provider_id=after.provider_id,
            run_id=after.run_id,
            amount=after.amount,
            currency=after.currency,
            claim_ids=claim_ids[n * CLAIMS_PER_PART : (n + 1) * CLAIMS_PER_PART],
            part=n + 1,
            parts=parts,
            recovered=after.recovered,
            recoveries=netted[n * CLAIMS_PER_PART : (n + 1) * CLAIMS_PER_PART],
        )
        for n in range(parts)
    ]
    return after, sent


def cancel(payout: Payout, reason: str) -> Decided:
    """Never sent (its release was refused or expired, or its provider can no longer be
    paid there): its claims leave it."""
    after = _moved(payout, "cancel", cancel_reason=reason)
    cancelled = PayoutCancelled(
        payout_id=after.payout_id,
        provider_id=after.provider_id,
        run_id=after.run_id,
        reason=reason,
        recovered=after.recovered,
    )
    return after, [cancelled]


def settle(payout: Payout, now: datetime) -> Decided:
    """The bank executed the transfer (settling twice changes nothing)."""
    if payout.status == "settled":
        return payout, []
    after = _moved(payout, "settle", settled_at=now)
    return after, [
        PayoutSettled(
            payout_id=after.payout_id,
            provider_id=after.provider_id,
            amount=after.amount,
            recovered=after.recovered,
        )
    ]


def fail(payout: Payout, reason_code: str, now: datetime) -> Decided:
    """The bank returned the transfer with ``reason_code`` (an ISO 20022 code, 422
    otherwise). A settled payout cannot fail (409); failing twice with the same code
    changes nothing."""
    reason = return_reason(reason_code)
    if payout.status == "failed" and payout.failure_reason == reason:
        return payout, []
    after = _moved(payout, "fail", failed_at=now, failure_reason=reason)
    return after, [
        PayoutFailed(
            payout_id=after.payout_id,
            provider_id=after.provider_id,
            reason=reason,
            recovered=after.recovered,
        )
    ]


def check_file_available(payout: Payout) -> None:
    """The pain.001 file exists once the run is released, and never for a cancelled payout."""
    if payout.status in ("proposed", "cancelled"):
        raise PaymentsError(
            "payout_not_released",
            f"the payout is {payout.status}: its file exists once its run is released",
        )
    if payout.amount == 0:
        raise PaymentsError(
            "payout_netted",
            "the payout was netted in full against the provider's recoveries: nothing is "
            "transferred, so there is no file (its remittance is the payout's)",
        )


def return_reason(code: str) -> str:
    """The bank's return reason, checked against the ISO 20022 codes (422 otherwise)."""
    normalised = code.strip().upper()
    if normalised not in RETURN_REASONS:
        raise Invalid(
            "unknown_return_reason",
            f"{code!r} is not an ISO 20022 return reason code (one of "
            f"{', '.join(sorted(RETURN_REASONS))})",
        )
    return normalised
