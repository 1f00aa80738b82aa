"""Recoveries netted against payouts, without a database: what a run takes from each
recovery, how the transactions of the file carry it, and what the events say."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml  # type: ignore[import-untyped]
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from services.payments import sepa
from services.payments.config import PaymentsConfig
from services.payments.domain import payouts as rules
from services.payments.domain import recoveries
from services.payments.domain.errors import PaymentsError
from services.payments.domain.recoveries import Netting, Recovery
from shared.events.payments import CLAIMS_PER_PART, PayoutSent, PayoutSettled
from tests.unit.support.payments import NS, lines, payout

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def owed_back(*amounts: int) -> list[Recovery]:
    return [
        recoveries.owed("p1", uuid.uuid4(), a, NOW + timedelta(minutes=n))
        for n, a in enumerate(amounts)
    ]


def test_a_run_nets_the_oldest_recoveries_first_and_never_more_than_owed() -> None:
    older, newer = owed_back(30_000, 50_000)
    payout_id = uuid.uuid4()
    netted = recoveries.net(60_000, [newer, older], payout_id, NOW)
    assert [(b.recovery_id, a.outstanding, a.status, n.amount) for b, a, n in netted] == [
        (older.recovery_id, 0, "netting", 30_000),
        (newer.recovery_id, 20_000, "open", 30_000),
    ]
    assert all(n.payout_id == payout_id for _, _, n in netted)
    assert netted[1][2].claim_id == newer.claim_id  # the reversed claim it comes from
    # owed less than the first recovery: that one is netted in part, the other untouched
    (only,) = recoveries.net(10_000, [older, newer], payout_id, NOW)
    assert (only[1].recovery_id, only[1].outstanding, only[2].amount) == (
        older.recovery_id,
        20_000,
        10_000,
    )


def test_a_recovery_given_back_is_open_again_and_netted_once_all_its_payouts_settled() -> None:
    (r,) = owed_back(40_000)
    ((_, bound, netting),) = recoveries.net(40_000, [r], uuid.uuid4(), NOW)
    assert bound.status == "netting"
    back = recoveries.given_back(bound, netting, NOW)
    assert (back.outstanding, back.status) == (40_000, "open")
    assert recoveries.settled(bound, pending_elsewhere=True, now=NOW).status == "netting"
    assert recoveries.settled(bound, pending_elsewhere=False, now=NOW).status == "netted"
    partly = replace(bound, outstanding=1, status="open")
    assert recoveries.settled(partly, pending_elsewhere=False, now=NOW).status == "open"


def _netting(amount: int) -> Netting:
    return Netting(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), amount, NOW)


@given(
    st.lists(st.integers(1, 10**7), min_size=1, max_size=8),
    st.lists(st.integers(1, 10**7), max_size=8),
)
def test_whatever_is_owed_and_owed_back_the_transfer_is_exact(
    claims: list[int], owed: list[int]
) -> None:
    """Transfer + recovered = owed, nothing negative, each recovery's outstanding plus what
    was taken is what it was, and what is left is recovered only once the run is paid."""
    rs = owed_back(*owed)
    netted = recoveries.net(sum(claims), rs, uuid.uuid4(), NOW)
    recovered = sum(n.amount for _, _, n in netted)
    assert recovered == min(sum(claims), sum(owed))
    assert sum(claims) - recovered >= 0
    for before, after, n in netted:
        assert after.outstanding + n.amount == before.outstanding and after.outstanding >= 0
        assert (after.status == "open") == (after.outstanding > 0)
    taken = {b.recovery_id for b, _, _ in netted}
    left = sum(r.outstanding for r in rs if r.recovery_id not in taken)
    left += sum(a.outstanding for _, a, _ in netted)
    assert left + recovered == sum(owed)


def test_a_netted_payout_is_one_transfer_naming_each_recovery() -> None:
    ls = lines(40_000, 60_000)
    netting = _netting(50_000)
    p = payout(amount=50_000, recovered=50_000)
    xml = sepa.pain001(PaymentsConfig(), p, ls, [netting])
    schema = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
    xmlschema.XMLSchema(str(schema)).validate(xml.decode())
    doc = ET.fromstring(xml)
    assert doc.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "1"
    assert Decimal(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) or "") == Decimal("500")
    assert [x.text for x in doc.iterfind(".//p:EndToEndId", NS)] == [p.payout_id.hex]
    (info,) = [x.text or "" for x in doc.iterfind(".//p:RmtInf/p:Ustrd", NS)]
    assert info == (
        f"ILA payout {p.payout_id.hex} owed 100000 less recovered 50000 for claim "
        f"{netting.claim_id.hex}"
    )
    assert len(info) <= 140


def test_a_payout_netted_in_full_has_no_file() -> None:
    with pytest.raises(PaymentsError) as refused:
        rules.check_file_available(payout(amount=0, recovered=10_000))
    assert refused.value.code == "payout_netted"


def test_the_events_carry_what_was_recovered() -> None:
    p = payout(status="proposed", amount=7_000, recovered=3_000)
    claim_ids = tuple(uuid.uuid4() for _ in range(CLAIMS_PER_PART + 1))
    nettings = (_netting(1_000), _netting(2_000))
    after, events = rules.release(p, claim_ids, nettings)
    assert all(isinstance(e, PayoutSent) for e in events)
    sent = [e for e in events if isinstance(e, PayoutSent)]
    assert [(e.part, e.parts, e.amount, e.recovered) for e in sent] == [
        (1, 2, 7_000, 3_000),
        (2, 2, 7_000, 3_000),
    ]
    assert [(r.recovery_id, r.claim_id, r.amount) for e in sent for r in e.recoveries] == [
        (n.recovery_id, n.claim_id, n.amount) for n in nettings
    ]
    _, settled = rules.settle(after, NOW)
    assert settled == [
        PayoutSettled(payout_id=p.payout_id, provider_id="p1", amount=7_000, recovered=3_000)
    ]
