"""Every order of download, fail, settle and re-run after a released run, checked against a
small model of one claim: a claim is paid at most once, is in at most one live payout, and
every file that pays it carries the same end-to-end id (a new message id per payout)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.support.payments import NS, World, captured_claims
from tests.support import bearer

pytestmark = pytest.mark.postgres

OPS = ("download", "fail", "settle", "rerun")


class Case:
    """One claim of one provider registered by its own agency, so that re-runs do not mix."""

    def __init__(self, world: World, n: int, order: tuple[str, ...]) -> None:
        self.world, self.order = world, order
        self.n = n
        self.provider = f"po{n}"
        self.agency = bearer(world.settings, "agency", sub=f"desk-{n}", agency_id=f"ag-{n}")
        self.claim_id = ""
        self.payout_id = ""
        self.status = ""  # the model: the latest payout's status
        self.msg_ids: set[str] = set()

    async def start(self) -> None:
        # each case's session ends before its claim, moving the clock on: quality assurance
        # valid long enough for every case
        await self.world.register_provider(self.provider, agency_id=f"ag-{self.n}", qa_days=36_500)
        [self.claim_id] = await captured_claims(self.world, self.provider, [100], register=False)

    async def run(self) -> bool:
        run = await self.world.released_run(self.agency)
        if not run["payouts"]:
            return False
        [payout] = run["payouts"]
        assert payout["status"] == "sent" and payout["amount"] == 100_000, payout
        self.payout_id, self.status = payout["payout_id"], "sent"
        return True

    async def step(self, op: str) -> None:
        w, path = self.world, f"/v1/payouts/{self.payout_id}"
        if op == "download":
            r = await w.c.get(f"{path}/sepa", headers=self.agency)
            assert r.status_code == 200, (self.order, r.text)
            doc = ET.fromstring(r.content)
            e2e = {x.text for x in doc.iterfind(".//p:EndToEndId", NS)}
            assert e2e == {self.claim_id.replace("-", "")}, self.order
            msg = doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS)
            assert msg == self.payout_id.replace("-", "")
            self.msg_ids.add(msg)
        elif op == "fail":
            r = await w.c.post(f"{path}/fail", headers=w.finance, json={"reason_code": "AC04"})
            if self.status == "settled":
                assert r.status_code == 409 and r.json()["code"] == "payout_settled", self.order
            else:
                assert r.status_code == 200, (self.order, r.text)
                self.status = "failed"
        elif op == "settle":
            r = await w.c.post(f"{path}/settle", headers=w.finance)
            if self.status == "failed":
                assert r.status_code == 409, (self.order, r.text)
            else:
                assert r.status_code == 200, (self.order, r.text)
                self.status = "settled"
        else:
            was = self.status
            # only a real failure makes the claim payable again
            assert await self.run() == (was == "failed"), self.order
        await self.check()

    async def check(self) -> None:
        claim = await self.world.claim_status(self.claim_id)
        expected = {"sent": "in_payout", "settled": "paid", "failed": "captured"}[self.status]
        assert claim["status"] == expected, (self.order, claim)
        async with self.world.rt.sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT p.status, l.amount, l.live FROM payments.payout_lines l "
                        "JOIN payments.payouts p USING (payout_id) WHERE l.claim_id = :c"
                    ),
                    {"c": self.claim_id},
                )
            ).all()
        assert sum(1 for r in rows if r.live) <= 1, (self.order, rows)
        assert sum(r.amount for r in rows if r.status == "settled") <= 100_000, self.order


async def test_every_order_of_download_fail_settle_and_rerun(world: World) -> None:
    orders = list(itertools.permutations(OPS))
    cases = [Case(world, n, order) for n, order in enumerate(orders)]
    for case in cases:
        await case.start()
    for case in cases:
        assert await case.run()
        for op in case.order:
            await case.step(op)
        # after a failure and a re-run a claim may have two files: same end-to-end id,
        # a different message id each
        assert len(case.msg_ids) <= 2


async def test_refused_and_expired_releases_return_the_claims(world: World) -> None:
    claims = await captured_claims(world, "pa", [100])
    run = await world.run_payouts()
    r = await world.c.post(
        f"/v1/payments/approvals/{run['approval_id']}/refuse",
        headers=world.finance,
        json={"reason_code": "amounts_unexpected"},
    )
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert (await world.claim_status(claims[0]))["status"] == "captured"
    got: dict[str, Any] = (
        await world.c.get(f"/v1/payouts/runs/{run['run_id']}", headers=world.agency)
    ).json()
    assert got["status"] == "refused"
    assert [p["status"] for p in got["payouts"]] == ["cancelled"]
    file = await world.c.get(
        f"/v1/payouts/{got['payouts'][0]['payout_id']}/sepa", headers=world.agency
    )
    assert file.status_code == 409
    # a release nobody decides in time: its claims return with the next run
    second = await world.run_payouts()
    world.clock.advance(timedelta(hours=world.settings.approval_ttl_hours, seconds=1))
    await world.approve_as_finance(second["approval_id"], expect=409)
    third = await world.released_run()
    assert [p["amount"] for p in third["payouts"]] == [100_000]
    lapsed = (
        await world.c.get(f"/v1/payouts/runs/{second['run_id']}", headers=world.agency)
    ).json()
    assert lapsed["status"] == "expired"
    assert [p["status"] for p in lapsed["payouts"]] == ["cancelled"]
    assert (await world.claim_status(claims[0]))["payout_id"] == third["payouts"][0]["payout_id"]
