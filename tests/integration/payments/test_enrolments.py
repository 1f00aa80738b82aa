"""The enrolment saga end to end: proposal checks, learner consent, the ledger's answer,
the participation fee and co-payment, refusal, expiry, velocity holds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from datetime import timedelta

import httpx
import pytest

from services.payments.config import PaymentsConfig
from services.payments.deps import Components
from services.payments.handlers.jobs import expire_forever, expire_once
from services.payments.store import read_models
from shared.events.catalogue import CourseWithdrawn
from shared.service import components_of
from tests.integration.support.payments import World
from tests.support import eventually

pytestmark = pytest.mark.postgres


async def test_proposed_confirmed_reserved_with_the_participation_fee(world: World) -> None:
    account = await world.account(credit=150_000, employment_status="employed")
    course = await world.course("p1", price=100_000)
    r = await world.propose("p1", account, course)
    assert r.status_code == 202, r.text
    e = r.json()
    assert e["status"] == "awaiting_learner_confirmation"
    assert r.headers["location"] == f"/v1/enrolments/{e['enrolment_id']}"
    assert e["participation_fee"] == 10_000 and e["requested"] == 90_000
    assert e["expires_at"] is not None and e["currency"] == "EUR"
    assert (await world.balance(account))["reserved"] == 0  # nothing before consent
    r = await world.confirm(account, e["enrolment_id"])
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("reserving", "confirmed")
    done = await world.settled(e["enrolment_id"])
    assert done["status"] == "confirmed", done
    assert done["covered"] == 90_000 and done["co_payment"] == 10_000
    b = await world.balance(account)
    assert b["reserved"] == 90_000 and b["available"] == 60_000
    assert "ila.payments.EnrolmentConfirmed.v1" in await world.outbox_types()


async def test_unemployed_learners_pay_no_participation_fee(world: World) -> None:
    account = await world.account(credit=150_000, employment_status="unemployed")
    course = await world.course("p1", price=100_000)
    e = await world.enrolled("p1", account, course)
    assert e["status"] == "confirmed"
    assert e["participation_fee"] == 0 and e["fee_exemption"] == "employment_status:unemployed"
    assert e["covered"] == 100_000 and e["co_payment"] == 0


async def test_an_earmarked_top_up_matching_the_course_waives_the_fee(world: World) -> None:
    account = await world.account(employment_status="employed")
    await world.grant(account, 50_000, earmark={"isced_fields": ["06"]})
    await world.grant(account, 60_000)
    course = await world.course("p1", price=100_000, isced_field="0613")
    e = await world.enrolled("p1", account, course)
    assert e["status"] == "confirmed"
    assert e["fee_exemption"] == "earmarked_top_up" and e["covered"] == 100_000
    # a course the earmark does not cover pays the fee
    other = await world.course("p1", price=20_000, isced_field="0111")
    e2 = await world.enrolled("p1", account, other)
    assert e2["participation_fee"] == 10_000 and e2["covered"] == 10_000


async def test_a_profile_change_before_consent_changes_the_fee(world: World) -> None:
    account = await world.account(credit=200_000, employment_status="employed")
    course = await world.course("p1", price=100_000)
    r = await world.propose("p1", account, course)
    assert r.json()["participation_fee"] == 10_000
    r2 = await world.c.patch(
        f"/v1/accounts/{account}/profile",
        headers=world.agency,
        json={"employment_status": "unemployed"},
    )
    assert r2.status_code == 200, r2.text

    async def fee_waived() -> bool:
        async with world.rt.sessions() as session:
            view = await read_models.account(session, uuid.UUID(account))
        return view is not None and view.employment_status == "unemployed"

    await eventually(fee_waived)
    r = await world.confirm(account, r.json()["enrolment_id"])
    assert r.status_code == 202 and r.json()["participation_fee"] == 0
    assert r.json()["fee_exemption"] == "employment_status:unemployed"
    assert r.json()["requested"] == 100_000


async def test_insufficient_credit_offers_a_co_payment_the_learner_may_accept(
    world: World,
) -> None:
    account = await world.account(credit=30_000)
    course = await world.course("p1", price=100_000)
    e = await world.enrolled("p1", account, course)
    assert e["status"] == "awaiting_co_payment", e
    assert e["reason"] == "insufficient_credit" and e["available_credit"] == 30_000
    assert e["co_payment"] == 70_000
    assert (await world.balance(account))["reserved"] == 0
    # confirming again without accepting is refused; accepting reserves what there is
    r = await world.confirm(account, e["enrolment_id"])
    assert r.status_code == 409 and r.json()["code"] == "co_payment_required"
    r = await world.confirm(account, e["enrolment_id"], accept_co_payment=True)
    assert r.status_code == 202, r.text
    done = await world.settled(e["enrolment_id"], "confirmed", "rejected")
    assert done["status"] == "confirmed"
    assert done["covered"] == 30_000 and done["co_payment"] == 70_000
    assert (await world.balance(account))["available"] == 0


async def test_co_payment_accepted_up_front(world: World) -> None:
    account = await world.account(credit=30_000, employment_status="employed")
    course = await world.course("p1", price=100_000)
    e = await world.enrolled("p1", account, course, accept_co_payment=True)
    assert e["status"] == "confirmed"
    assert e["covered"] == 30_000 and e["co_payment"] == 70_000  # fee included


async def test_no_credit_at_all_is_rejected_with_the_ledgers_reason(world: World) -> None:
    account = await world.account(credit=0)
    course = await world.course("p1", price=100_000)
    e = await world.enrolled("p1", account, course, accept_co_payment=True)
    assert e["status"] == "rejected" and e["reason"] == "insufficient_credit"
    assert "ila.payments.EnrolmentRejected.v1" in await world.outbox_types()


async def test_a_learner_may_refuse(world: World) -> None:
    account = await world.account(credit=200_000)
    course = await world.course("p1")
    r = await world.propose("p1", account, course)
    enrolment_id = r.json()["enrolment_id"]
    r = await world.c.post(f"/v1/enrolments/{enrolment_id}/refuse", headers=world.learner(account))
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert r.json()["reason"] == "learner_refused"
    r = await world.confirm(account, enrolment_id)
    assert r.status_code == 409
    assert (await world.balance(account))["reserved"] == 0


async def test_a_learner_who_never_confirms(world: World) -> None:
    account = await world.account(credit=200_000)
    course = await world.course("p1", seats=1)
    r = await world.propose("p1", account, course)
    enrolment_id = r.json()["enrolment_id"]
    # the only seat is taken while the proposal waits
    other = await world.account(credit=200_000)
    full = await world.propose("p1", other, course)
    assert full.status_code == 409 and full.json()["code"] == "session_full"
    assert await expire_once(world.rt) == 0
    world.clock.advance(timedelta(hours=73))
    assert await expire_once(world.rt) == 1
    e = await world.enrolment(enrolment_id)
    assert e["status"] == "expired" and e["reason"] == "confirmation_expired"
    r = await world.confirm(account, enrolment_id)
    assert r.status_code == 409
    b = await world.balance(account)
    assert b["reserved"] == 0 and b["available"] == 200_000
    types = await world.outbox_types()
    assert "ila.payments.EnrolmentRequested.v1" not in types
    # the seat is free again
    assert (await world.propose("p1", other, course)).status_code == 202


async def test_a_confirmation_after_the_deadline_expires_the_enrolment(world: World) -> None:
    account = await world.account(credit=200_000)
    course = await world.course("p1")
    r = await world.propose("p1", account, course)
    world.clock.advance(timedelta(hours=80))
    late = await world.confirm(account, r.json()["enrolment_id"])
    assert late.status_code == 409 and late.json()["code"] == "confirmation_expired"
    assert (await world.enrolment(r.json()["enrolment_id"]))["status"] == "expired"
    assert (await world.balance(account))["reserved"] == 0


async def test_proposals_the_read_models_refuse(world: World) -> None:
    account = await world.account(credit=200_000)
    course = await world.course("p1")
    cases = []
    cases.append((await world.propose("nobody", account, course), 403, "provider_unknown"))
    await world.register_provider("p-sus")
    await world.provider_status("p-sus", "suspended")
    await world.register_provider("p-qa", qa_days=-1)
    cases.append((await world.propose("p-qa", account, course), 403, "provider_not_eligible"))
    cases.append((await world.propose("p-sus", account, course), 403, "provider_not_eligible"))
    await world.register_provider("p2")
    cases.append((await world.propose("p2", account, course), 403, "course_of_another_provider"))
    missing = (str(uuid.uuid4()), course[1])
    cases.append((await world.propose("p1", account, missing), 404, "course_not_found"))
    wrong_session = (course[0], str(uuid.uuid4()))
    cases.append((await world.propose("p1", account, wrong_session), 422, "session_not_found"))
    changed = await world.course("p1")
    # a price change sends the course back to the agency: no enrolment until approved again
    await world.deliver(
        world.course_approved(
            "p1",
            uuid.UUID(changed[0]),
            uuid.UUID(changed[1]),
            price=120_000,
            starts_in=30,
            days=20,
            seats=20,
            isced_field="0613",
            version=2,
            updated=True,
        )
    )
    cases.append((await world.propose("p1", account, changed), 422, "course_not_approved"))
    ended = await world.course("p1", starts_in=-30, days=10)
    cases.append((await world.propose("p1", account, ended), 422, "session_ended"))
    cases.append((await world.propose("p1", str(uuid.uuid4()), course), 404, "account_not_found"))
    cheap = await world.course("p1", price=5_000)
    employed = await world.account(credit=100, employment_status="employed")
    cases.append(
        (await world.propose("p1", employed, cheap), 422, "price_within_participation_fee")
    )
    suspended = await world.account(credit=200_000)
    r = await world.c.post(
        f"/v1/accounts/{suspended}/suspend",
        headers=world.agency,
        json={"reason_code": "eligibility_review"},
    )
    assert r.status_code == 200, r.text
    suspended_case = await eventually(
        lambda: world.account_status(suspended), lambda status: status == "suspended"
    )
    assert suspended_case == "suspended"
    cases.append((await world.propose("p1", suspended, course), 422, "account_not_active"))
    for response, status, code in cases:
        assert response.status_code == status, (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    r = await world.c.get("/v1/enrolments", headers=world.agency)
    assert r.json()["items"] == []


async def test_a_course_withdrawn_or_a_provider_suspended_before_consent_rejects(
    world: World,
) -> None:
    account = await world.account(credit=300_000)
    course = await world.course("p1")
    first = (await world.propose("p1", account, course)).json()["enrolment_id"]
    other_course = await world.course("p2")
    second = (await world.propose("p2", account, other_course)).json()["enrolment_id"]
    await world.provider_status("p1", "suspended")
    await world.deliver(
        CourseWithdrawn(course_id=uuid.UUID(other_course[0]), version=1, provider_id="p2")
    )
    r = await world.confirm(account, first)
    assert r.status_code == 202 and r.json()["status"] == "rejected"
    assert r.json()["reason"] == "provider_not_eligible"
    r = await world.confirm(account, second)
    assert r.json()["reason"] == "course_not_approved"
    assert (await world.balance(account))["reserved"] == 0


@pytest.mark.parametrize("payments_config", [PaymentsConfig(velocity_per_hour=3)])
async def test_velocity_rule_holds_enrolments_for_review(world: World) -> None:
    course = await world.course("p1", seats=50)
    accounts = [await world.account(credit=200_000) for _ in range(5)]
    statuses = []
    for account in accounts:
        r = await world.propose("p1", account, course)
        assert r.status_code == 202, r.text
        statuses.append(r.json())
    assert [e["status"] for e in statuses] == ["awaiting_learner_confirmation"] * 3 + ["held"] * 2
    held, held2 = statuses[3], statuses[4]
    assert held["hold_reason"] == "velocity" and held["expires_at"] is None
    # a held enrolment cannot be confirmed until an agency releases it
    r = await world.confirm(accounts[3], held["enrolment_id"])
    assert r.status_code == 409
    r = await world.c.post(
        f"/v1/enrolments/{held['enrolment_id']}/release", headers=world.provider("p1")
    )
    assert r.status_code == 403
    # the agency proposes the release; finance approves it
    r = await world.c.post(f"/v1/enrolments/{held['enrolment_id']}/release", headers=world.agency)
    assert r.status_code == 202 and r.json()["action"] == "enrolment_release", r.text
    assert r.headers["location"] == f"/v1/payments/approvals/{r.json()['approval_id']}"
    assert (await world.enrolment(held["enrolment_id"]))["status"] == "held"
    decided = await world.approve_as_finance(r.json()["approval_id"])
    assert decided["result"]["status"] == "awaiting_learner_confirmation"
    assert (await world.enrolment(held["enrolment_id"]))["status"] == (
        "awaiting_learner_confirmation"
    )
    e = await world.enrolled_existing(accounts[3], held["enrolment_id"])
    assert e["status"] == "confirmed"
    r = await world.c.post(f"/v1/enrolments/{held2['enrolment_id']}/reject", headers=world.agency)
    assert r.json()["status"] == "rejected" and r.json()["reason"] == "rejected_on_review"
    # an hour later the provider may enrol again
    world.clock.advance(timedelta(minutes=61))
    r = await world.propose("p1", await world.account(), course)
    assert r.json()["status"] == "awaiting_learner_confirmation"


async def test_the_same_idempotency_key_proposes_once(world: World) -> None:
    account = await world.account(credit=200_000)
    course = await world.course("p1")
    first = await world.propose("p1", account, course, **{"Idempotency-Key": "k-1"})
    again = await world.propose("p1", account, course, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    other = await world.course("p1")
    clash = await world.propose("p1", account, other, **{"Idempotency-Key": "k-1"})
    assert clash.status_code == 422
    listed = await world.c.get("/v1/enrolments", headers=world.provider("p1"))
    assert len(listed.json()["items"]) == 1


@pytest.mark.parametrize("payments_config", [PaymentsConfig(sweep_interval_seconds=0.05)])
async def test_the_background_job_expires_unconfirmed_proposals(world: World) -> None:
    account = await world.account(credit=200_000)
    r = await world.propose("p1", account, await world.course("p1"))
    job = asyncio.create_task(expire_forever(world.rt))
    try:
        await asyncio.sleep(0.2)
        assert (await world.enrolment(r.json()["enrolment_id"]))["status"] == (
            "awaiting_learner_confirmation"
        )
        world.clock.advance(timedelta(hours=72, seconds=1))
        e = await eventually(
            lambda: world.enrolment(r.json()["enrolment_id"]), lambda e: e["status"] == "expired"
        )
        assert e["reason"] == "confirmation_expired"
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    assert (await world.balance(account))["reserved"] == 0


async def test_confirmations_that_arrive_together_are_answered_each_alone(world: World) -> None:
    """Learners' confirmations posted together are decided in one transaction (group
    commit), each answered alone: another learner's enrolment answers 404, a late one
    expires its proposal and is refused, a key sent twice reserves once, and a second
    confirmation of an enrolment waits for the next batch, where it finds the consent
    given (decided together, both would have asked the ledger to reserve)."""
    committer = components_of(world.rt, Components).confirmations
    committer.window = 1.0  # wide enough that the confirmations below share a batch
    mine, theirs = await world.account(credit=300_000), await world.account(credit=300_000)
    course = await world.course("p1", price=100_000)
    late = (await world.propose("p1", mine, course)).json()["enrolment_id"]
    world.clock.advance(timedelta(hours=71))
    first = (await world.propose("p1", mine, course)).json()["enrolment_id"]
    second = (await world.propose("p1", theirs, course)).json()["enrolment_id"]
    world.clock.advance(timedelta(hours=2))  # the first proposal's deadline passed

    def confirm(account: str, enrolment_id: str, key: str) -> Awaitable[httpx.Response]:
        headers = {**world.learner(account), "Idempotency-Key": key}
        return world.c.post(f"/v1/enrolments/{enrolment_id}/confirm", headers=headers, json={})

    batches = committer.batches
    answers = await asyncio.gather(
        confirm(mine, first, "a"),
        confirm(mine, first, "b"),  # the same enrolment again: the next batch
        confirm(theirs, first, "c"),  # another learner's enrolment: 404
        confirm(theirs, second, "d"),
        confirm(theirs, second, "d"),  # the same request twice: one consent
        confirm(mine, late, "e"),  # past its deadline
        confirm(mine, str(uuid.uuid4()), "f"),  # no such enrolment
    )
    assert committer.batches - batches == 3  # three requests name the enrolment `first`
    assert [r.status_code for r in answers] == [202, 202, 404, 202, 202, 409, 404]
    assert answers[2].json()["code"] == answers[6].json()["code"] == "enrolment_not_found"
    assert answers[5].json()["code"] == "confirmation_expired"
    assert {r.headers.get("Idempotent-Replayed") for r in answers[3:5]} == {"true", None}
    assert (await world.enrolment(late))["status"] == "expired"
    for enrolment_id in (first, second):
        assert (await world.settled(enrolment_id))["status"] == "confirmed"
    assert (await world.balance(mine))["reserved"] == 100_000
    assert (await world.balance(theirs))["reserved"] == 100_000
    asked = await world.outbox_types()
    assert asked.count("ila.payments.EnrolmentRequested.v1") == 2


async def test_a_batch_reads_each_enrolment_s_inputs_as_one_at_a_time(world: World) -> None:
    """The read models a batch of consents is decided on, read in one statement, are each
    one's own, in the order asked: an account's lots, a course, a provider's standing, a
    session's seats and a provider's proposals since an instant (a proposal reads those)."""
    mine, theirs = await world.account(credit=300_000), await world.account(credit=120_000)
    course, session = await world.course("p1", price=100_000)
    other, _ = await world.course("p2", price=50_000)
    await world.propose("p1", mine, (course, session))
    since = world.clock.now() - timedelta(hours=1)
    asks = [
        read_models.InputsAsked(
            uuid.UUID(mine), uuid.UUID(course), "p1", uuid.UUID(session), since
        ),
        read_models.InputsAsked(uuid.UUID(theirs), uuid.UUID(other), "p2"),
        read_models.InputsAsked(uuid.uuid4(), uuid.uuid4(), "nobody"),
    ]
    today = world.clock.now().date()
    async with world.rt.uow() as s:
        single = [
            await read_models.enrolment_inputs(
                s,
                account_id=a.account_id,
                course_id=a.course_id,
                provider_id=a.provider_id,
                today=today,
                session_id=a.session_id,
                since=a.since,
            )
            for a in asks
        ]
        assert await read_models.enrolment_inputs_many(s, asks, today) == single
        assert await read_models.enrolment_inputs_many(s, asks[::-1], today) == single[::-1]
    first, second, nobody = single
    assert (first.seats_taken, first.proposed_since) == (1, 1)
    assert sum(lot.amount for lot in first.lots) == 300_000
    assert sum(lot.amount for lot in second.lots) == 120_000
    assert (first.course is not None, second.course is not None) == (True, True)
    assert (nobody.account, nobody.course, nobody.provider_status, nobody.lots) == (
        None,
        None,
        None,
        [],
    )
