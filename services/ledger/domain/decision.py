"""A decision in progress: the events decided so far and the state they lead to, each event
folded by ``evolve`` as it is emitted (so a rule can never emit an event that would not
apply), and the expiry of credit that comes back to a lot already past its date."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from shared.events.ledger import LedgerEvent, LotExpired

from .evolve import evolve
from .state import Lot, WalletState


class Decision:
    """Events decided so far, and the state they lead to (each event checked by evolve)."""

    def __init__(self, state: WalletState, account_id: uuid.UUID) -> None:
        self.state = state
        self.account_id = account_id
        self.events: list[LedgerEvent] = []

    def emit(self, event: LedgerEvent) -> None:
        self.state = evolve(self.state, event)
        self.events.append(event)

    def expire_returned(self, lot_ids: Iterable[uuid.UUID], now: datetime) -> None:
        """Expire credit that came back to lots already past their expiry."""
        for lot_id in dict.fromkeys(lot_ids):
            lot = self.state.lots[lot_id]
            if lot.is_due(now) and lot.free > 0:
                self.emit(lot_expired(self.account_id, lot, now))


def lot_expired(account_id: uuid.UUID, lot: Lot, now: datetime) -> LotExpired:
    return LotExpired(account_id=account_id, occurred_at=now, lot_id=lot.lot_id, amount=lot.free)


__all__ = ["Decision", "lot_expired"]
