"""Every refusal reaches the one who asked: a capture or a reservation the ledger refuses is
answered (``CaptureRejected``, ``ReservationRejected``), payments stops the claim or the
enrolment in a state an operator resolves (retry or abandon), an enrolment the ledger never
answers expires and frees its seat; and milestone payments are parts of one reservation."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from services.ledger.commands import ExpireReservations, SuspendWallet
from services.ledger.deps import LedgerComponents
from services.ledger.handlers.wallets import execute
from services.payments.deps import Components
from services.payments.handlers import enrolments as enrolment_handlers
from services.payments.store import read_models
from shared.events import Envelope
from shared.events.payments import EnrolmentRequested
from shared.outbox import EventContext
from shared.service import components_of
from tests.integration.support.payments import World, running
from tests.integration.support.payouts import reverse_capture
from tests.support import eventually


async def _expire_in_the_ledger(world: World, account: str) -> None:
    """The ledger's sweep expires the account's reservations (as if past their date)."""
    rt = world.app.state.runtimes["ledger"]
    ledger = components_of(rt, LedgerComponents).ledger
    async with rt.uow() as session:
        outcome = await execute(
            ExpireReservations(account_id=uuid.UUID(account)),
            ledger.context(
                session,
                EventContext.new("system:test"),
                now=world.clock.now() + timedelta(days=3650),
            ),
        )
    assert outcome.events, "nothing was due"


async def test_a_capture_refused_as_its_reservation_expired_stops_the_claim_a_retry_pays_once(
    world: World,
) -> None:
    account, e = await running(world)
    enrolment_id = str(e["enrolment_id"])
    ledger_rt = world.app.state.runtimes["ledger"]
    # the ledger expires the reservation while payments does not know yet
    await ledger_rt.relay.stop()
    await _expire_in_the_ledger(world, account)
    r = await world.claim("p1", enrolment_id, rate=100)
    assert r.status_code == 202 and r.json()["status"] == "approved", r.text
    claim_id = r.json()["claim_id"]
    await world.attest(claim_id)  # the learner's word is in: only the capture is missing
    ledger_rt.relay.start()

    claim = await eventually(
        lambda: world.claim_status(claim_id), lambda c: c["status"] == "capture_rejected"
    )
    assert claim["reason"] == "reservation_expired"
    assert "ila.ledger.CaptureRejected.v1" in await world.outbox_types("ledger")
    # nothing is paid: the claim is in no payout run
    run = await world.released_run(world.admin)
    assert run["payouts"] == []
    b = await world.balance(account)
    assert b["spent_total"] == 0 and b["reserved"] == 0

    # only an operator resolves it
    r = await world.c.post(f"/v1/claims/{claim_id}/retry", headers=world.provider("p1"))
    assert r.status_code == 403
    # the fix: credit reserved again for the claim, then captured; paid exactly once
    r = await world.c.post(f"/v1/claims/{claim_id}/retry", headers=world.finance)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    await world.captured(claim_id)
    again = await world.c.post(f"/v1/claims/{claim_id}/retry", headers=world.finance)
    assert again.status_code == 409 and again.json()["code"] == "not_capture_rejected"
    run = await world.released_run(world.admin)
    assert [p["amount"] for p in run["payouts"]] == [100_000]
    assert (await world.released_run(world.admin))["payouts"] == []
    b = await world.balance(account)
    assert b["spent_total"] == 100_000 and b["reserved"] == 0


async def test_an_operator_abandons_a_refused_capture_and_nothing_is_paid(world: World) -> None:
    account, e = await running(world)
    ledger_rt = world.app.state.runtimes["ledger"]
    await ledger_rt.relay.stop()
    await _expire_in_the_ledger(world, account)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=100)
    claim_id = r.json()["claim_id"]
    ledger_rt.relay.start()
    await eventually(
        lambda: world.claim_status(claim_id), lambda c: c["status"] == "capture_rejected"
    )
    r = await world.c.post(f"/v1/claims/{claim_id}/abandon", headers=world.admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"]) == ("rejected", "abandoned_by_operator")
    assert (await world.released_run(world.admin))["payouts"] == []


async def test_a_retry_the_ledger_cannot_reserve_for_goes_back_to_the_operator(
    world: World,
) -> None:
    account, e = await running(world)
    ledger_rt = world.app.state.runtimes["ledger"]
    await ledger_rt.relay.stop()
    await _expire_in_the_ledger(world, account)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=100)
    claim_id = r.json()["claim_id"]
    ledger_rt.relay.start()
    await eventually(
        lambda: world.claim_status(claim_id), lambda c: c["status"] == "capture_rejected"
    )
    # the cause is not removed yet: the wallet is suspended
    ledger = components_of(ledger_rt, LedgerComponents).ledger
    async with ledger_rt.uow() as session:
        await execute(
            SuspendWallet(account_id=uuid.UUID(account), reason_code="eligibility_review"),
            ledger.context(session, EventContext.new("system:test")),
        )
    r = await world.c.post(f"/v1/claims/{claim_id}/retry", headers=world.admin)
    assert r.json()["status"] == "approved", r.text
    claim = await eventually(
        lambda: world.claim_status(claim_id), lambda c: c["status"] == "capture_rejected"
    )
    assert claim["reason"] == "account_suspended"
    assert (await world.balance(account))["spent_total"] == 0


async def test_a_reservation_refused_as_written_waits_for_an_operator(world: World) -> None:
    account = await world.account(credit=500_000)
    course = await world.course("p1", price=100_000, starts_in=-1)
    r = await world.propose("p1", account, course)
    enrolment_id = r.json()["enrolment_id"]
    # the ledger refuses the request as written: it would expire before it is decided
    ledger_rt = world.app.state.runtimes["ledger"]
    await ledger_rt.relay.stop()
    payments_rt = world.rt
    await payments_rt.relay.stop()
    r = await world.confirm(account, enrolment_id)
    assert r.status_code == 202, r.text
    async with payments_rt.uow() as session:
        rows = (
            await session.execute(
                text("SELECT id, body FROM payments.outbox WHERE type = :t AND sent_at IS NULL"),
                {"t": EnrolmentRequested.cloudevent_type()},
            )
        ).all()
        # the request is still unsent (no relay published it), so the ledger reads it rewritten
        assert len(rows) == 1, f"{len(rows)} unsent reservation requests to rewrite"
        for row in rows:
            env = Envelope.from_bytes(bytes(row.body))
            env.data["expires_at"] = "2000-01-01T00:00:00Z"
            await session.execute(
                text("UPDATE payments.outbox SET body = :b WHERE id = :id"),
                {"b": env.to_bytes(), "id": row.id},
            )
    payments_rt.relay.start()
    ledger_rt.relay.start()
    refused = await world.settled(enrolment_id, "reservation_rejected")
    assert refused["reason"] == "expiry_in_past"
    assert (await world.balance(account))["reserved"] == 0

    r = await world.c.post(f"/v1/enrolments/{enrolment_id}/retry", headers=world.provider("p1"))
    assert r.status_code == 403
    r = await world.c.post(f"/v1/enrolments/{enrolment_id}/retry", headers=world.admin)
    assert r.status_code == 200 and r.json()["status"] == "reserving", r.text
    confirmed = await world.settled(enrolment_id, "confirmed")
    assert confirmed["status"] == "confirmed"
    assert (await world.balance(account))["reserved"] == confirmed["covered"] > 0
    r = await world.c.post(f"/v1/enrolments/{enrolment_id}/abandon", headers=world.admin)
    assert r.status_code == 409 and r.json()["code"] == "not_reservation_rejected"


async def test_an_enrolment_the_ledger_never_answers_expires_and_frees_its_seat(
    world: World,
) -> None:
    account = await world.account(credit=500_000)
    course = await world.course("p1", price=100_000, starts_in=-1)
    r = await world.propose("p1", account, course)
    enrolment_id = r.json()["enrolment_id"]
    # the ledger is not listening
    await world.rt.relay.stop()
    r = await world.confirm(account, enrolment_id)
    assert r.json()["status"] == "reserving"
    payments = components_of(world.rt, Components)
    session_id = uuid.UUID(r.json()["session_id"])

    async def time_out() -> int:
        async with world.rt.uow() as session:
            ctx = payments.payments.context(session, EventContext.new("system:test"))
            return await enrolment_handlers.time_out_due(ctx)

    async def seats() -> int:
        async with world.rt.sessions() as session:
            return await read_models.seats_taken(session, session_id)

    assert await time_out() == 0  # not yet
    assert await seats() == 1
    world.clock.advance(timedelta(minutes=payments.config.reserving_timeout_minutes))
    assert await time_out() == 1
    expired = await world.enrolment(enrolment_id)
    assert (expired["status"], expired["reason"]) == ("expired", "reservation_timeout")
    assert await seats() == 0
    # the answer comes late: the credit goes back
    world.rt.relay.start()
    await eventually(
        lambda: world.balance(account), lambda b: b["reserved"] == 0 and b["available"] == 500_000
    )
    assert (await world.enrolment(enrolment_id))["status"] == "expired"


async def test_a_reversed_capture_stops_an_unpaid_claim(world: World) -> None:
    account, e = await running(world)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=100)
    claim_id = r.json()["claim_id"]
    await world.payable(claim_id)
    await reverse_capture(world, account, claim_id)
    claim = await eventually(
        lambda: world.claim_status(claim_id), lambda c: c["status"] == "reversed"
    )
    assert claim["reason"] == "capture_reversed"
    assert "ila.payments.ClaimReversed.v1" in await world.outbox_types()
    assert (await world.released_run(world.admin))["payouts"] == []
    assert (await world.balance(account))["available"] == 500_000  # the credit came back


async def test_a_reversed_capture_of_a_paid_claim_is_owed_back(world: World) -> None:
    account, e = await running(world)
    r = await world.claim("p1", str(e["enrolment_id"]), rate=100)
    claim_id = r.json()["claim_id"]
    await world.payable(claim_id)
    run = await world.released_run(world.admin)
    assert [p["amount"] for p in run["payouts"]] == [100_000]
    await reverse_capture(world, account, claim_id)

    async def owed() -> list[tuple[object, ...]]:
        async with world.rt.sessions() as session:
            rows = await session.execute(
                text("SELECT provider_id, amount, status FROM payments.recoveries")
            )
            return [tuple(row) for row in rows]

    assert await eventually(owed, lambda rows: len(rows) == 1) == [("p1", 100_000, "open")]
    assert (await world.claim_status(claim_id))["status"] == "in_payout"
    # delivered again: owed once
    await _redeliver_reversal(world, account)
    assert len(await owed()) == 1


async def _redeliver_reversal(world: World, account: str) -> None:
    messages = [
        m
        for m in await world.ledger_messages(account)
        if Envelope.from_bytes(m.value).type == "ila.ledger.EntryReversed.v2"
    ]
    assert messages
    await world.rt.consumer.handle_batch(messages)
