"""The pain.001 file and bank-account checks, without a database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml  # type: ignore[import-untyped]
import xmlschema

from services.payments import sepa
from services.payments.config import PaymentsConfig
from tests.unit.support.payments import NS, lines, payout


def test_the_file_is_valid_deterministic_and_sums_up() -> None:
    p, ls = payout(), lines(12_345, 1, 99_999)
    xml = sepa.pain001(PaymentsConfig(), p, ls)
    schema = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
    xmlschema.XMLSchema(str(schema)).validate(xml.decode())
    assert sepa.pain001(PaymentsConfig(), p, ls) == xml
    doc = ET.fromstring(xml)
    assert doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == p.payout_id.hex
    assert doc.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "3"
    assert Decimal(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) or "") == Decimal("1123.45")
    assert Decimal(doc.findtext(".//p:PmtInf/p:CtrlSum", namespaces=NS) or "") == Decimal("1123.45")
    assert doc.findtext(".//p:Cdtr/p:Nm", namespaces=NS) == "Formation Eee & Co"


def test_the_older_schema_too() -> None:
    cfg = PaymentsConfig(sepa_schema="pain.001.001.03")
    xml = sepa.pain001(cfg, payout(bic=None), lines(500))
    assert b"pain.001.001.03" in xml


def test_bank_accounts_are_checked() -> None:
    assert sepa.normalise_bank_account("fr14 2004 1010 0505 0001 3m02 606", None) == (
        "FR1420041010050500013M02606",
        None,
    )
    for iban, bic in (
        ("DE89370400440532013001", None),
        ("XX00", None),
        ("DE89370400440532013000", "NOTABIC"),
    ):
        with pytest.raises(sepa.InvalidBankAccount):
            sepa.normalise_bank_account(iban, bic)
