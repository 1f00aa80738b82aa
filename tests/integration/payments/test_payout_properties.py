"""Random sequences of payout run / release / refusal / download / fail / settle / re-run,
through the payout handlers and four eyes on the real PostgreSQL (the machine is
``tests.integration.support.payouts.PayoutMachine``).

After every step: the sum settled for each claim (every settlement recorded, whatever
happened to the payout afterwards) never exceeds its captured amount, no claim
is in two live payouts, a claim is ``paid`` exactly when a settled payout holds it, and every
file paying a claim carries the claim's end-to-end id.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.integration.support.payouts import PayoutMachine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_random_payout_sequences_pay_each_claim_at_most_once(
    pg_admin_url: str, template: str
) -> None:
    PayoutMachine.admin_url = pg_admin_url
    PayoutMachine.template = template
    run_state_machine_as_test(
        PayoutMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
