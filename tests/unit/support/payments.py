"""Builders for the payments' domain tests: a payout and its lines, and the namespace of the
pain.001 file that pays them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from services.payments.domain.payouts import Payout, PayoutLine

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


def payout(**kw: Any) -> Payout:
    fields: dict[str, Any] = {
        "payout_id": uuid.uuid4(),
        "run_id": uuid.uuid4(),
        "provider_id": "p1",
        "status": "sent",
        "amount": 1,
        "currency": "EUR",
        "creditor_name": "Formation Ééé & Co",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "execution_date": date(2026, 3, 2),
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
        **kw,
    }
    return Payout(**fields)


def lines(*amounts: int) -> list[PayoutLine]:
    return [
        PayoutLine(
            payout_id=uuid.uuid4(),
            claim_id=uuid.uuid4(),
            enrolment_id=uuid.uuid4(),
            milestone="completion",
            amount=a,
        )
        for a in amounts
    ]
