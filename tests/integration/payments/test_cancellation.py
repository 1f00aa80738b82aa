"""Cancellation rules: withdrawal period, late cancellation by the learner, cancellation by
the provider, and before consent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres


async def cancel(world: World, headers: dict[str, str], enrolment_id: str) -> dict[str, object]:
    r = await world.c.post(
        f"/v1/enrolments/{enrolment_id}/cancel",
        headers=headers,
        json={"reason_code": "changed_mind"},
    )
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def released(world: World, account: str, available: int) -> dict[str, object]:
    from tests.support import eventually

    return await eventually(
        lambda: world.balance(account), lambda b: b["reserved"] == 0 and b["available"] == available
    )


async def test_inside_the_withdrawal_period_everything_comes_back(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=30))
    world.clock.advance(timedelta(days=13))
    done = await cancel(world, world.learner(account), e["enrolment_id"])
    assert done["status"] == "cancelled" and done["cancellation_rule"] == "withdrawal"
    assert done["cancelled_by"] == "learner"
    await released(world, account, 200_000)
    # the ledger answered; payments learns it from the ledger's event, a moment later
    from tests.support import eventually

    after = await eventually(
        lambda: world.enrolment(e["enrolment_id"]), lambda e: e["released"] != 0
    )
    assert after["released"] == 100_000


async def test_a_late_learner_cancellation_leaves_the_provider_a_share(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=30))
    world.clock.advance(timedelta(days=15))
    done = await cancel(world, world.learner(account), e["enrolment_id"])
    assert done["cancellation_rule"] == "late"
    b = await released(world, account, 190_000)
    assert b["spent_total"] == 10_000
    claims = (await world.c.get("/v1/claims", headers=world.provider("p1"))).json()["items"]
    assert [(c["milestone"], c["amount"]) for c in claims] == [("cancellation", 10_000)]
    from tests.support import eventually

    await eventually(
        lambda: world.claim_status(claims[0]["claim_id"]), lambda c: c["status"] == "captured"
    )
    # the provider's share is paid like any claim
    run = await world.released_run()
    assert [p["amount"] for p in run["payouts"]] == [10_000]


async def test_once_the_session_started_a_learner_cancellation_is_late(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    done = await cancel(world, world.learner(account), e["enrolment_id"])
    assert done["cancellation_rule"] == "late"
    await released(world, account, 190_000)


async def test_a_provider_cancellation_releases_everything(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    world.clock.advance(timedelta(days=20))
    done = await cancel(world, world.provider("p1"), e["enrolment_id"])
    assert done["cancellation_rule"] == "provider" and done["cancelled_by"] == "provider"
    b = await released(world, account, 200_000)
    assert b["spent_total"] == 0


async def test_cancelling_before_consent_reserves_nothing(world: World) -> None:
    account = await world.account(credit=200_000)
    r = await world.propose("p1", account, await world.course("p1"))
    done = await cancel(world, world.provider("p1"), r.json()["enrolment_id"])
    assert done["cancellation_rule"] == "before_confirmation"
    assert (await world.confirm(account, r.json()["enrolment_id"])).status_code == 409
    assert "ila.payments.ReleaseRequested.v1" not in await world.outbox_types()


async def test_what_cannot_be_cancelled(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=-1))
    world.session_over(e)
    claim = await world.claim("p1", e["enrolment_id"], rate=100)
    await world.captured(claim.json()["claim_id"])
    r = await world.c.post(
        f"/v1/enrolments/{e['enrolment_id']}/cancel", headers=world.learner(account), json={}
    )
    assert r.status_code == 409 and r.json()["code"] == "not_cancellable"
    # someone else's enrolment: as if it did not exist
    other = await world.account()
    r = await world.c.post(
        f"/v1/enrolments/{e['enrolment_id']}/cancel", headers=world.learner(other), json={}
    )
    assert r.status_code == 404
    await world.register_provider("p2")
    r = await world.c.post(
        f"/v1/enrolments/{e['enrolment_id']}/cancel", headers=world.provider("p2"), json={}
    )
    assert r.status_code == 404
    assert (
        await world.c.post(
            f"/v1/enrolments/{e['enrolment_id']}/cancel", headers=world.agency, json={}
        )
    ).status_code == 403


async def test_a_cancellation_carries_a_reason_code_never_free_text(world: World) -> None:
    account = await world.account(credit=200_000)
    e = await world.enrolled("p1", account, await world.course("p1", starts_in=30))
    learner = world.learner(account)
    url = f"/v1/enrolments/{e['enrolment_id']}/cancel"
    for body in ({"reason": "my illness"}, {"reason_code": "my illness"}):
        r = await world.c.post(url, headers=learner, json=body)
        assert r.status_code == 422, r.text
        assert (await world.enrolment(e["enrolment_id"]))["status"] == "confirmed"
    done = await cancel(world, learner, e["enrolment_id"])
    assert done["status"] == "cancelled"
    from sqlalchemy import text

    async with world.app.state.runtimes["payments"].sessions() as session:
        body = await session.scalar(
            text("SELECT convert_from(body, 'UTF8') FROM payments.outbox WHERE type = :t"),
            {"t": "ila.payments.EnrolmentCancelled.v2"},
        )
    assert '"reason_code":"changed_mind"' in body.replace(" ", "")
    assert "illness" not in body
