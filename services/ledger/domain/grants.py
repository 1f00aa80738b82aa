"""Granting credit and expiring it: a grant opens a lot (idempotent on its caller-chosen
lot id; a statutory grant once per year), and a lot past its date gives up its free part."""

from __future__ import annotations

from datetime import datetime

from services.ledger.commands import ExpireLots, GrantCredits
from shared.events.ledger import CreditsGranted, LedgerEvent

from .decision import lot_expired
from .errors import (
    ExpiryInPast,
    IdConflict,
    WalletIsClosed,
    WalletNotFound,
)
from .selection import NEVER
from .state import WalletState


def grant(state: WalletState, cmd: GrantCredits, now: datetime) -> list[LedgerEvent]:
    known = state.lots.get(cmd.lot_id)
    if known is not None:
        same = (
            known.amount == cmd.amount
            and known.funder_id == cmd.funder_id
            and known.kind == cmd.kind
            and known.year == cmd.year
            and known.expires_at == cmd.expires_at
            and known.earmark == cmd.earmark
        )
        if not same:
            raise IdConflict(f"lot {cmd.lot_id} was granted with other terms")
        return []
    if cmd.kind == "statutory" and cmd.year in state.years_granted:
        return []
    if state.status == "absent":
        raise WalletNotFound(f"no wallet for account {cmd.account_id}")
    if state.status == "closed":
        raise WalletIsClosed(f"wallet {cmd.account_id} is closed")
    if cmd.expires_at is not None and cmd.expires_at <= now:
        raise ExpiryInPast(f"lot {cmd.lot_id} would expire at {cmd.expires_at}, before {now}")
    return [
        CreditsGranted(
            account_id=cmd.account_id,
            occurred_at=now,
            lot_id=cmd.lot_id,
            amount=cmd.amount,
            funder_id=cmd.funder_id,
            reason_code=cmd.reason_code,
            kind=cmd.kind,
            year=cmd.year,
            expires_at=cmd.expires_at,
            earmark=cmd.earmark,
            allocation_id=cmd.allocation_id,
        )
    ]


def expire_lots(state: WalletState, cmd: ExpireLots, now: datetime) -> list[LedgerEvent]:
    # Only the free part expires: credit held by a reservation was promised to an enrolment
    # before the expiry and stays usable by that enrolment's capture.
    due = sorted(
        (lot for lot in state.lots.values() if lot.is_due(now) and lot.free > 0),
        key=lambda lot: (lot.expires_at or NEVER, lot.granted_version),
    )
    return [lot_expired(cmd.account_id, lot, now) for lot in due]


__all__ = ["expire_lots", "grant"]
