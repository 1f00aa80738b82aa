"""A region's co-funding rule through the whole saga: the course's region travels with the
credit request, the ledger pays the shortfall from the region's budget in the reservation's
transaction, and the learner's co-payment drops to the participation fee; a course the rule
does not cover leaves the learner the offer to pay the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.support.payments import World

pytestmark = pytest.mark.postgres


async def region_rule(world: World, budget: int, **terms: object) -> str:
    """A region funder, its budget of the year and a co-funding rule, each approved."""
    year = datetime.now(UTC).year
    r = await world.c.post(
        "/v1/ledger/funders",
        json={"kind": "region", "name": "Région", "region": "FR-IDF"},
        headers=world.admin,
    )
    assert r.status_code == 201, r.text
    funder_id: str = r.json()["funder_id"]
    for method, path, body in (
        ("PUT", f"/v1/ledger/funders/{funder_id}/budgets/{year}", {"amount": budget}),
        ("POST", f"/v1/ledger/funders/{funder_id}/cofunding-rules", {"year": year, **terms}),
    ):
        r = await world.c.request(
            method,
            path,
            json=body,
            headers={**world.admin, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 202, r.text
        approved = await world.c.post(
            f"/v1/ledger/approvals/{r.json()['approval_id']}/approve", headers=world.finance
        )
        assert approved.status_code == 200, approved.text
    return funder_id


async def test_the_region_pays_the_shortfall_and_the_learner_only_the_fee(world: World) -> None:
    region = await region_rule(world, 500_000, region="FR-IDF", isced_prefix="06", share=100)
    account = await world.account(credit=30_000)
    digital = await world.course("p1", price=100_000, isced_field="0613")
    e = await world.enrolled("p1", account, digital)
    assert e["status"] == "confirmed", e
    # the whole credit request is covered: the account's 30,000 and the region's shortfall
    assert e["covered"] == e["requested"] == 100_000 - e["participation_fee"]
    assert e["co_payment"] == e["participation_fee"]
    lots = (await world.balance(account))["lots"]
    (cofunded,) = [lot for lot in lots if lot["funder_id"] == region]
    assert cofunded["amount"] == e["requested"] - 30_000
    assert cofunded["earmark"]["course_ids"] == [digital[0]]

    # welding is not in the rule's field: the learner is offered to pay what is missing
    other = await world.account(credit=30_000)
    welding = await world.course("p1", price=100_000, isced_field="0715")
    offer = await world.enrolled("p1", other, welding)
    assert offer["status"] == "awaiting_co_payment", offer
    assert offer["co_payment"] == 100_000 - 30_000
    assert [lot for lot in (await world.balance(other))["lots"] if lot["funder_id"] == region] == []
