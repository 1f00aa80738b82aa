"""Payout and payee rules as pure functions: the payout's legal moves, the bank's return
reasons, masked IBANs, the cooling-off of new bank details.

A payout is ``proposed`` (assembled in a run that waits for a second person), then ``sent``
(released) or ``cancelled`` (the release was refused or expired: its claims are payable
again); a sent payout is ``settled`` (its claims are paid) or ``failed`` (the bank returned
it with an ISO 20022 reason code; its claims are payable again, under the same end-to-end
ids). Settled and failed are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.payments.domain import Invalid, PaymentsError

PayoutStatus = Literal["proposed", "sent", "settled", "failed", "cancelled"]
PayoutMove = Literal["release", "cancel", "settle", "fail"]

# the legal moves, written once
TRANSITIONS: dict[tuple[str, str], PayoutStatus] = {
    ("proposed", "release"): "sent",
    ("proposed", "cancel"): "cancelled",
    ("sent", "settle"): "settled",
    ("sent", "fail"): "failed",
}
# a payout in these statuses holds its claims (they are in no other payout)
LIVE: tuple[PayoutStatus, ...] = ("proposed", "sent", "settled")

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


def next_status(status: str, move: PayoutMove) -> PayoutStatus:
    """The payout's status after ``move``, or a 409 naming why it cannot happen."""
    after = TRANSITIONS.get((status, move))
    if after is not None:
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


def mask_iban(iban: str) -> str:
    """Country, check digits and the last four characters: ``FR76 **** **** 0189``."""
    compact = iban.replace(" ", "").upper()
    return f"{compact[:4]} **** **** {compact[-4:]}"


@dataclass(frozen=True)
class PayeeStanding:
    """Whether a provider may be paid to its current bank details now."""

    payable: bool
    reason: str | None = None
    held_until: datetime | None = None


def payee_standing(
    *,
    source: str,
    effective_at: datetime,
    verified_at: datetime | None,
    cooling_off: timedelta,
    now: datetime,
) -> PayeeStanding:
    """Changed bank details are paid only after the cooling-off period or once verified.

    The details a provider registered with (in the catalogue, by its agency) are its
    onboarding details, not a change: the cooling-off guards against redirection.
    """
    if source != "change" or verified_at is not None:
        return PayeeStanding(True)
    until = effective_at + cooling_off
    if now < until:
        return PayeeStanding(False, "payee_cooling_off", until)
    return PayeeStanding(True)
