"""A provider's bank details (its payee) as payments' rules see them: masked in events and
summaries, and paid only after the cooling-off period when they were changed (unless the
bank verified them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

PayeeSource = Literal["registration", "change"]
# details set by a change (not at the provider's registration): they cool off
CHANGED: PayeeSource = "change"
REGISTERED: PayeeSource = "registration"


@dataclass(frozen=True)
class Payee:
    """Where a provider is paid (one row of ``payments.payees``)."""

    provider_id: str
    name: str
    iban: str
    bic: str | None
    updated_by: str
    updated_at: datetime
    effective_at: datetime
    source: PayeeSource = REGISTERED
    verified_at: datetime | None = None
    verified_by: str | None = None


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
    """Bank details are paid only after the cooling-off period or once finance verified them
    with the bank (verification of payee): changed details, and the details a provider was
    registered with too, since one agency clerk both registers a provider and enters them."""
    if verified_at is not None:
        return PayeeStanding(True)
    until = effective_at + cooling_off
    if now < until:
        return PayeeStanding(False, "payee_cooling_off", until)
    return PayeeStanding(True)
