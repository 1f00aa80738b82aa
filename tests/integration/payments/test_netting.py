"""A paid claim whose capture the ledger reversed is owed back by its provider and netted in
the provider's next payout runs: the transfer is what the run owes less what it recovers
(never below zero), what it cannot recover is carried to the next run, another provider is
never netted, and the remittance and the SEPA file name each recovery with the reversed claim
it comes from. After each story the books balance: the files plus what was recovered are
what the paid claims captured, and the files less what is still owed back are what was
captured less what was reversed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest
import xmlschema
from sqlalchemy import text

from shared.events import Envelope
from tests.integration.support.payments import NS, XSD, World, captured_claims
from tests.integration.support.payouts import reverse_capture
from tests.support import eventually

pytestmark = pytest.mark.postgres


async def _paid_then_reversed(world: World, provider: str, rate: int = 100) -> str:
    """A claim paid by a settled payout, whose capture the ledger then reverses."""
    (claim_id,) = await captured_claims(world, provider, [rate])
    run = await world.released_run()
    (payout,) = [p for p in run["payouts"] if p["provider_id"] == provider]
    await _settle(world, payout["payout_id"])
    claim = await world.claim_status(claim_id)
    assert claim["status"] == "paid"
    await reverse_capture(world, str(claim["account_id"]), claim_id)
    await eventually(lambda: _recoveries(world), lambda rows: claim_id in rows)
    return claim_id


async def _settle(world: World, payout_id: str) -> dict[str, Any]:
    r = await world.c.post(f"/v1/payouts/{payout_id}/settle", headers=world.finance)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _recoveries(world: World) -> dict[str, tuple[int, int, str]]:
    """Each recovery by the reversed claim it comes from: amount, outstanding, status."""
    async with world.rt.sessions() as session:
        rows = await session.execute(
            text("SELECT claim_id, amount, outstanding, status FROM payments.recoveries")
        )
        return {str(r.claim_id): (r.amount, r.outstanding, r.status) for r in rows}


async def _remittance(world: World, payout_id: str, provider: str) -> dict[str, Any]:
    r = await world.c.get(f"/v1/payouts/{payout_id}", headers=world.provider(provider))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _file(world: World, payout_id: str) -> ET.Element:
    r = await world.c.get(f"/v1/payouts/{payout_id}/sepa", headers=world.finance)
    assert r.status_code == 200, r.text
    xmlschema.XMLSchema(str(XSD)).validate(r.text)
    return ET.fromstring(r.content)


def _ctrl_sum(doc: ET.Element) -> int:
    total = Decimal(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) or "0")
    amounts = [Decimal(x.text or "0") for x in doc.iterfind(".//p:InstdAmt", NS)]
    assert sum(amounts) == total
    return int(total * 100)


async def _books(world: World) -> None:
    """Every settled payout: file + recovered = its claims; over all of them, the files
    plus what was recovered are what the paid claims captured, and the files less what is
    still owed back are what was captured less what was reversed."""
    async with world.rt.sessions() as session:
        settled = (
            await session.execute(
                text(
                    "SELECT p.payout_id, p.amount, p.recovered, "
                    "(SELECT sum(amount) FROM payments.payout_lines l "
                    " WHERE l.payout_id = p.payout_id) AS owed, "
                    "(SELECT coalesce(sum(amount), 0) FROM payments.recovery_nettings n "
                    " WHERE n.payout_id = p.payout_id AND n.live) AS netted "
                    "FROM payments.payouts p WHERE p.status = 'settled'"
                )
            )
        ).all()
        paid = await session.scalar(
            text("SELECT coalesce(sum(captured), 0) FROM payments.claims WHERE status = 'paid'")
        )
        unpaid = await session.scalar(
            text(
                "SELECT count(*) FROM payments.claims WHERE captured > 0 "
                "AND status NOT IN ('paid', 'reversed')"
            )
        )
        reversed_ = await session.scalar(
            text("SELECT coalesce(sum(amount), 0) FROM payments.recoveries")
        )
        outstanding = await session.scalar(
            text("SELECT coalesce(sum(outstanding), 0) FROM payments.recoveries")
        )
        bound = await session.scalar(
            text(
                "SELECT coalesce(sum(n.amount), 0) FROM payments.recovery_nettings n "
                "JOIN payments.payouts p USING (payout_id) "
                "WHERE n.live AND p.status <> 'settled'"
            )
        )
    assert unpaid == 0, "every captured claim is paid or reversed before the books close"
    files = 0
    for payout in settled:
        assert payout.amount + payout.recovered == payout.owed
        assert payout.recovered == payout.netted and payout.amount >= 0
        if payout.amount:
            files += _ctrl_sum(await _file(world, str(payout.payout_id)))
        else:
            r = await world.c.get(f"/v1/payouts/{payout.payout_id}/sepa", headers=world.finance)
            assert r.status_code == 409 and r.json()["code"] == "payout_netted"
    recovered = sum(p.recovered for p in settled)
    assert files + recovered == paid
    assert files - outstanding - bound == paid - reversed_


async def _sent_events(world: World) -> list[dict[str, Any]]:
    async with world.rt.sessions() as session:
        rows = await session.execute(text("SELECT body FROM payments.outbox ORDER BY id"))
        envelopes = [Envelope.from_bytes(bytes(r.body)) for r in rows]
    return [e.data for e in envelopes if e.type == "ila.payments.PayoutSent.v1"]


async def test_a_paid_claim_reversed_is_netted_in_the_next_run(world: World) -> None:
    reversed_claim = await _paid_then_reversed(world, "pa")
    assert (await _recoveries(world))[reversed_claim] == (100_000, 100_000, "open")
    new = await captured_claims(world, "pa", [100, 50])
    run = await world.run_payouts()
    assert (run["total"], run["recovered"]) == (50_000, 100_000)
    (payout,) = run["payouts"]
    assert (payout["owed"], payout["recovered"], payout["amount"]) == (150_000, 100_000, 50_000)
    # bound to the proposed payout: another run cannot take it again
    assert (await _recoveries(world))[reversed_claim] == (100_000, 0, "netting")
    assert run["approval"]["summary"]["recovered"] == 100_000
    await world.approve_as_finance(run["approval_id"])

    remittance = await _remittance(world, payout["payout_id"], "pa")
    assert sorted(line["claim_id"] for line in remittance["lines"]) == sorted(new)
    assert [(r["claim_id"], r["amount"], r["live"]) for r in remittance["recoveries"]] == [
        (reversed_claim, 100_000, True)
    ]
    doc = await _file(world, payout["payout_id"])
    assert _ctrl_sum(doc) == 50_000
    # one transfer: the claims less the recovery, named with the claim it comes from
    (info,) = [x.text or "" for x in doc.iterfind(".//p:RmtInf/p:Ustrd", NS)]
    assert "owed 150000 less recovered 100000 for claim " + reversed_claim.replace("-", "") in info
    assert [x.text for x in doc.iterfind(".//p:EndToEndId", NS)] == [
        payout["payout_id"].replace("-", "")
    ]
    (sent,) = [e for e in await _sent_events(world) if e["payout_id"] == payout["payout_id"]]
    assert (sent["amount"], sent["recovered"]) == (50_000, 100_000)
    assert [(r["claim_id"], r["amount"]) for r in sent["recoveries"]] == [(reversed_claim, 100_000)]

    await _settle(world, payout["payout_id"])
    assert (await _recoveries(world))[reversed_claim] == (100_000, 0, "netted")
    assert [(await world.claim_status(c))["status"] for c in new] == ["paid", "paid"]
    assert (await world.run_payouts())["payouts"] == []  # nothing owed, nothing to net
    await _books(world)


async def test_a_recovery_larger_than_the_run_is_carried_to_the_next(world: World) -> None:
    reversed_claim = await _paid_then_reversed(world, "pa")
    # the next run owes 50,000: all of it is recovered, nothing is transferred
    (small,) = await captured_claims(world, "pa", [50])
    run = await world.released_run()
    (netted,) = run["payouts"]
    assert (netted["amount"], netted["recovered"], netted["status"]) == (0, 50_000, "settled")
    assert (await world.claim_status(small))["status"] == "paid"
    r = await world.c.get(f"/v1/payouts/{netted['payout_id']}/sepa", headers=world.provider("pa"))
    assert r.status_code == 409 and r.json()["code"] == "payout_netted"
    assert (await _recoveries(world))[reversed_claim] == (100_000, 50_000, "open")
    types = await world.outbox_types()
    assert types.count("ila.payments.PayoutSettled.v1") == 2  # the first payout, and this one

    # the next one is returned by the bank: what it recovered is owed again
    (returned,) = await captured_claims(world, "pa", [79])
    run = await world.released_run()
    (failing,) = run["payouts"]
    assert (failing["amount"], failing["recovered"]) == (29_000, 50_000)
    assert (await _recoveries(world))[reversed_claim] == (100_000, 0, "netting")
    r = await world.c.post(
        f"/v1/payouts/{failing['payout_id']}/fail",
        headers=world.finance,
        json={"reason_code": "AC04"},
    )
    assert r.status_code == 200, r.text
    assert [x["live"] for x in r.json()["recoveries"]] == [False]
    assert (await _recoveries(world))[reversed_claim] == (100_000, 50_000, "open")

    # paid again, netted again, settled: recovered for good
    run = await world.released_run()
    (paying,) = run["payouts"]
    assert (paying["amount"], paying["recovered"]) == (29_000, 50_000)
    await _settle(world, paying["payout_id"])
    assert (await world.claim_status(returned))["status"] == "paid"
    assert (await _recoveries(world))[reversed_claim] == (100_000, 0, "netted")
    await _books(world)


async def test_only_the_provider_who_owes_is_netted(world: World) -> None:
    reversed_claim = await _paid_then_reversed(world, "pa")
    await captured_claims(world, "pa", [100])
    await captured_claims(world, "pb", [79])
    run = await world.released_run()
    by_provider = {p["provider_id"]: p for p in run["payouts"]}
    assert (by_provider["pa"]["amount"], by_provider["pa"]["recovered"]) == (0, 100_000)
    assert (by_provider["pb"]["amount"], by_provider["pb"]["recovered"]) == (79_000, 0)
    assert (await _remittance(world, by_provider["pb"]["payout_id"], "pb"))["recoveries"] == []
    # the provider owing nothing more sees its own remittance, not another's
    r = await world.c.get(
        f"/v1/payouts/{by_provider['pa']['payout_id']}", headers=world.provider("pb")
    )
    assert r.status_code == 404
    await _settle(world, by_provider["pb"]["payout_id"])
    assert (await _recoveries(world))[reversed_claim] == (100_000, 0, "netted")
    await _books(world)
