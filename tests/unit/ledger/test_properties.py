"""Random sequences of ledger commands against the plain reference model of
``tests.unit.support``: after every step the folded wallet, the replayed wallet and the model
agree on every amount, the invariants hold and a repeated command changes nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.unit.support import LedgerMachine

LedgerMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerMachine = LedgerMachine.TestCase
