"""Payments use cases: load, decide (``services.payments.domain``), store and stage events,
all inside the caller's transaction. Split by aggregate: enrolments, claims, payouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.payments.config import PaymentsConfig
from shared.clock import Clock
from shared.outbox import Outbox


@dataclass
class Payments:
    """What every use case needs: where events go, the rules, and the clock."""

    outbox: Outbox
    config: PaymentsConfig = field(default_factory=PaymentsConfig)
    clock: Clock = field(default_factory=Clock)
