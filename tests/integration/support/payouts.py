"""Support of the payout tests: a reversed capture (what a provider then owes back and a
payout nets), and the payout state machine that the property tests drive.

``PayoutMachine`` runs random sequences of payout run / release / refusal / download / fail /
settle / re-run through the payout handlers and four eyes, each example on its own copy of a
migrated database (``admin_url`` and ``template`` are set by the test). After every step: the
sum settled for each claim (every settlement recorded, whatever happened to the payout
afterwards) never exceeds its captured amount, no claim is in two live payouts, a claim is
``paid`` exactly when a settled payout holds it, and every file paying a claim carries the
claim's end-to-end id.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import text

from services.payments.commands import FailPayout, RunPayouts
from services.payments.config import PaymentsConfig
from services.payments.domain.claims import Claim
from services.payments.domain.errors import PaymentsError
from services.payments.domain.payees import REGISTERED
from services.payments.domain.payouts import Payout
from services.payments.handlers import Payments, payouts
from services.payments.store import payees, read_models
from services.payments.store import payouts as payout_store
from services.payments.store import rows as stored
from shared.approvals import FourEyes
from shared.auth import Principal
from shared.clock import Clock
from shared.db import transaction
from shared.errors import DomainError
from shared.events.payments import PaymentsApprovalDecided, PaymentsApprovalRequested
from shared.outbox import EventContext, Outbox
from tests.integration.support.payments import NS, World
from tests.support import ExampleDatabase


async def reverse_capture(world: World, account: str, claim_id: str) -> None:
    """An admin proposes the reversal of the claim's capture in the ledger; finance
    approves it."""
    async with world.rt.sessions() as session:
        reservation = await session.scalar(
            text("SELECT reservation_id FROM payments.claims WHERE claim_id = :c"),
            {"c": claim_id},
        )
    r = await world.c.post(
        f"/v1/ledger/accounts/{account}/reversals",
        headers={**world.admin, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "target": {"kind": "capture", "reservation_id": str(reservation)},
            "reason_code": "provider_error",
            "note": "training never given",
        },
    )
    assert r.status_code == 202, r.text
    r = await world.c.post(
        f"/v1/ledger/approvals/{r.json()['approval_id']}/approve", headers=world.finance
    )
    assert r.status_code == 200, r.text


PROVIDERS = ("pa", "pb")
ADMIN = Principal(sub="admin-1", role="admin")
FINANCE = Principal(sub="finance-1", role="finance")
CTX = EventContext.new("property")


class PayoutMachine(ExampleDatabase, RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.p = Payments(Outbox("payments"), PaymentsConfig(), Clock())
        self.fe = FourEyes(
            "payments",
            self.p.outbox,
            PaymentsApprovalRequested,
            PaymentsApprovalDecided,
            clock=self.p.clock.now,
        )
        payouts.register_actions(self.fe, self.p)
        self.captured: dict[uuid.UUID, int] = {}
        # what the bank paid per claim, by every settlement ever recorded (a later status
        # change cannot hide it)
        self.paid: dict[uuid.UUID, int] = {}
        self.loop.run_until_complete(self._seed())

    def go(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _seed(self) -> None:
        now = datetime.now(UTC)
        async with transaction(self.sessions) as session:
            for provider_id in PROVIDERS:
                await read_models.upsert_provider(
                    session,
                    provider_id,
                    status="accredited",
                    qa_valid_until=date.today() + timedelta(days=365),
                    agency_id="pes-fr",
                )
                await payees.put_payee(
                    session,
                    provider_id,
                    REGISTERED,
                    name=f"Provider {provider_id}",
                    iban="DE89370400440532013000",
                    bic=None,
                    actor="catalogue",
                    now=now,
                )
                # verified with the bank: runs pay at once instead of waiting out the
                # cooling-off, so the sequences exercise real payments
                await payees.verify_payee(session, provider_id, "finance:f", now)
                for amount in (10_000, 25_000):
                    claim_id = uuid.uuid4()
                    self.captured[claim_id] = amount
                    await stored.insert(
                        session,
                        Claim(
                            claim_id=claim_id,
                            enrolment_id=uuid.uuid4(),
                            provider_id=provider_id,
                            milestone="completion",
                            evidence={},
                            status="captured",
                            amount=amount,
                            captured=amount,
                            claimed_by=f"provider:{provider_id}",
                            claimed_at=now,
                            captured_at=now,
                            updated_at=now,
                        ),
                    )

    async def _payouts(self, status: str | None = None) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.execute(
                # an order the drawn sequence decides (ids are random; providers are drawn)
                text("SELECT * FROM payments.payouts ORDER BY created_at, provider_id, payout_id")
            )
            return [dict(r._mapping) for r in rows if status is None or r.status == status]

    async def _pending(self) -> list[uuid.UUID]:
        async with self.sessions() as session:
            return [p.approval_id for p in await self.fe.page(session, status="pending")]

    @initialize()
    def first_run_released(self) -> None:
        """Every sequence starts from a released run, where money moves."""
        self.run()
        self.decide(True, 0)

    @rule()
    def run(self) -> None:
        async def go() -> None:
            try:
                async with transaction(self.sessions) as session:
                    run = await payouts.run_payouts(
                        RunPayouts(),
                        ADMIN,
                        self.fe,
                        self.p.context(session, CTX),
                        currency="EUR",
                    )
                # every provider is payable: nothing is held back from a run
                assert not run.run.skipped, run.run.skipped
            except PaymentsError as exc:
                assert exc.code == "nothing_to_pay"

        self.go(go())

    @rule(approve=st.booleans(), pick=st.integers(0, 10))
    def decide(self, approve: bool, pick: int) -> None:
        pending = self.go(self._pending())
        if not pending:
            return

        async def go() -> None:
            async with transaction(self.sessions) as session:
                await self.fe.decide(
                    session,
                    pending[pick % len(pending)],
                    FINANCE,
                    CTX,
                    approve=approve,
                    reason_code=None if approve else "refused",
                )

        self.go(go())

    @rule(move=st.sampled_from(["settle", "fail", "download"]), pick=st.integers(0, 20))
    def reconcile(self, move: str, pick: int) -> None:
        # mostly payouts that were released (sent, settled, failed): where money moves
        rows = self.go(self._payouts())
        released = [r for r in rows if r["status"] in ("sent", "settled", "failed")]
        rows = released if released and pick % 4 else rows
        if not rows:
            return
        payout = rows[pick % len(rows)]

        async def go() -> None:
            async with transaction(self.sessions) as session:
                row = await stored.get(session, Payout, payout["payout_id"], lock=True)
                assert row is not None
                ctx = self.p.context(session, CTX)
                if move == "settle":
                    was = row.status
                    await payouts.settle(row, ctx)
                    if was != "settled":
                        for line in await payout_store.payout_lines(session, row.payout_id):
                            claim_id = line.claim_id
                            self.paid[claim_id] = self.paid.get(claim_id, 0) + line.amount
                elif move == "fail":
                    await payouts.fail(row, FailPayout(reason_code="AC04"), ctx)
                else:
                    xml = await payouts.payout_file(row, ctx)
                    lines = await payout_store.payout_lines(session, row.payout_id)
                    doc = ET.fromstring(xml)
                    e2e = sorted(x.text or "" for x in doc.iterfind(".//p:EndToEndId", NS))
                    assert e2e == sorted(line.claim_id.hex for line in lines)

        try:
            self.go(go())
        except DomainError as exc:
            # refusals are the legal-move table speaking, and change nothing
            assert exc.code in (
                "payout_not_released",
                "payout_cancelled",
                "payout_settled",
                "payout_final",
            )
            assert payout["status"] in ("proposed", "cancelled", "settled", "failed")

    @rule()
    def time_passes(self) -> None:
        self.p.clock.advance(timedelta(hours=80))  # pending releases expire

    @invariant()
    def paid_once(self) -> None:
        self.go(self._check())

    async def _check(self) -> None:
        async with self.sessions() as session:
            lines = (
                await session.execute(
                    text(
                        "SELECT l.claim_id, l.amount, l.live, p.status FROM payments.payout_lines "
                        "l JOIN payments.payouts p USING (payout_id)"
                    )
                )
            ).all()
            claims = {
                r.claim_id: r
                for r in await session.execute(
                    text("SELECT claim_id, status, payout_id FROM payments.claims")
                )
            }
        for claim_id, captured in self.captured.items():
            mine = [r for r in lines if r.claim_id == claim_id]
            settled = sum(r.amount for r in mine if r.status == "settled")
            assert settled <= captured, (claim_id, mine)
            assert self.paid.get(claim_id, 0) <= captured, (claim_id, mine)
            assert self.paid.get(claim_id, 0) == settled, (claim_id, mine)
            live = [r for r in mine if r.status in ("proposed", "sent", "settled")]
            assert len(live) <= 1 and len(live) == sum(1 for r in mine if r.live), mine
            claim = claims[claim_id]
            assert (claim.status == "paid") == (settled > 0), (claim, mine)
            assert (claim.status == "in_payout") == any(
                r.status in ("proposed", "sent") for r in live
            ), (claim, mine)
