"""The domain's random command sequences, also run through the real store.

Every command of the pure state machine (tests/unit/ledger/test_properties.py) is executed
again through the ledger's handler on PostgreSQL. After every step: the events the store
appended are the ones the pure decision produced; the projections (wallet, lots,
reservations) equal the folded state; a full replay of the stored stream equals it too; and
``verify`` finds every chain intact. The pure machine keeps comparing everything with its
plain reference model, so projections == full replay == reference.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test
from sqlalchemy import text

from services.ledger.audit import verify
from services.ledger.commands import Command
from services.ledger.domain import LedgerError, replay
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import execute
from services.ledger.store import events as event_store
from services.ledger.store import projections
from shared.db import transaction
from shared.outbox import EventContext, Outbox
from tests.support import ExampleDatabase, migrated_template
from tests.unit.support import ACCOUNT, LedgerMachine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class StoreMachine(ExampleDatabase, LedgerMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(Outbox("ledger"))

    def run(self, command: Command, expected: Any) -> None:
        before = len(self.wire)
        super().run(command, expected)  # the pure decision, checked against the reference
        decided = self.wire[before:]
        try:
            stored = self.loop.run_until_complete(self._execute(command))
        except LedgerError as error:
            stored, refused = [], error.code
        else:
            refused = None
        # the store appends exactly what the pure decision produced (nothing when refused)
        assert stored == decided, (command, refused, stored, decided)

    async def _execute(self, command: Command) -> list[Any]:
        async with transaction(self.sessions) as session:
            ctx = self.ledger.context(session, EventContext.new("property"), now=self.now)
            outcome = await execute(command, ctx)
        return list(outcome.events)

    @invariant()
    def projections_and_stored_replay_equal_the_state(self) -> None:
        self.loop.run_until_complete(self._check())

    async def _check(self) -> None:
        async with self.sessions() as session:
            rows = await event_store.load_stream(session, ACCOUNT)
            assert [r.payload() for r in rows] == self.wire
            assert replay(r.payload() for r in rows) == self.state
            wallet = await projections.wallet(session, ACCOUNT)
            if not rows:
                assert wallet is None
                return
            assert wallet is not None
            s = self.state
            assert (
                wallet["status"],
                wallet["version"],
                wallet["available"],
                wallet["reserved"],
                wallet["granted_total"],
                wallet["spent_total"],
                wallet["expired_total"],
            ) == (
                s.status,
                s.version,
                s.available,
                s.reserved,
                s.granted_total,
                s.spent_total,
                s.expired_total,
            )
            lots = {
                r["lot_id"]: r
                for r in (
                    await session.execute(
                        text("SELECT lot_id, remaining, reserved, spent, expired FROM ledger.lots")
                    )
                ).mappings()
            }
            assert set(lots) == set(s.lots)
            for lot_id, lot in s.lots.items():
                row = lots[lot_id]
                assert (row["remaining"], row["reserved"], row["spent"], row["expired"]) == (
                    lot.remaining,
                    lot.reserved,
                    lot.spent,
                    lot.expired,
                )
            reservations = {
                r["reservation_id"]: r
                for r in (
                    await session.execute(
                        text(
                            "SELECT reservation_id, status, amount, captured, released "
                            "FROM ledger.reservations"
                        )
                    )
                ).mappings()
            }
            assert set(reservations) == set(s.reservations)
            for rid, res in s.reservations.items():
                row = reservations[rid]
                assert (row["status"], row["amount"], row["captured"], row["released"]) == (
                    res.status,
                    res.amount,
                    res.captured,
                    res.released,
                )
            report = await verify(session)
            assert report.ok, report.mismatches


@pytest.fixture(scope="module")
def template(pg_admin_url: str) -> str:
    return migrated_template(pg_admin_url, "ledger")


def test_random_command_sequences_through_the_store(pg_admin_url: str, template: str) -> None:
    StoreMachine.admin_url = pg_admin_url
    StoreMachine.template = template
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
