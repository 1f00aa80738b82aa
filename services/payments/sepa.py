"""ISO 20022 pain.001 credit-transfer files for payouts (written by ``sepaxml``), and IBAN/BIC
checks (``schwifty``).

One file per payout: one payment information block from the fund to the provider, one
transaction per remittance line (claim), so the provider can reconcile each claim by its
end-to-end id. The message and block ids are the payout's, so the same payout always gives
the same identifiers and a bank can refuse a file submitted twice. The end-to-end id is the
claim's: a claim paid again after a bank return goes out under the same EndToEndId in a new
message, so the bank can spot a duplicate.

A payout that nets the provider's recoveries is one transaction instead: the transfer (what
its claims owe less what was recovered), under the payout's id as end-to-end id, whose
remittance information names what the claims owe and each recovery with the reversed claim it
comes from. Taking the recoveries from the claims' own transactions would hide them: a
recovery as large as a claim leaves no transaction to name it on. (The remittance
information holds 140 characters; the payout's remittance, ``GET /v1/payouts/{id}``, lists
every claim and every recovery in full.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer  # type: ignore[import-untyped]

from services.payments.config import PaymentsConfig
from services.payments.domain.payouts import Payout, PayoutLine
from services.payments.domain.recoveries import Netting


class InvalidBankAccount(ValueError):
    pass


def normalise_bank_account(iban: str, bic: str | None) -> tuple[str, str | None]:
    """The IBAN in electronic form and the BIC, checked (checksums, country formats)."""
    try:
        checked = IBAN(iban)
        checked_bic = BIC(bic) if bic else None
    except SchwiftyException as exc:
        raise InvalidBankAccount(str(exc)) from exc
    except ValueError as exc:
        raise InvalidBankAccount(str(exc)) from exc
    return checked.compact, str(checked_bic) if checked_bic else None


def _id(value: uuid.UUID) -> str:
    return value.hex  # 32 characters: within the 35 SEPA allows


def pain001(
    config: PaymentsConfig,
    payout: Payout,
    lines: Sequence[PayoutLine],
    nettings: Sequence[Netting] = (),
) -> bytes:
    """The payout as a pain.001 document, validated against the XSD shipped in sepaxml."""
    transfer = SepaTransfer(
        {
            "name": config.debtor_name,
            "IBAN": config.debtor_iban,
            "BIC": config.debtor_bic,
            "batch": True,
            "currency": payout.currency,
        },
        schema=config.sepa_schema,
        clean=True,
    )
    transfer.msg_id = _id(payout.payout_id)
    if nettings:
        transactions = [(payout.amount, netted_remittance(payout, nettings), payout.payout_id)]
    else:
        transactions = [(line.amount, remittance(line), line.claim_id) for line in lines]
    for amount, description, endtoend in transactions:
        payment: dict[str, Any] = {
            "name": payout.creditor_name,
            "IBAN": payout.iban,
            "amount": int(amount),
            "execution_date": payout.execution_date,
            "description": description,
            "endtoend_id": _id(endtoend),
        }
        if payout.bic:
            payment["BIC"] = payout.bic
        transfer.add_payment(payment)
    _stamp(transfer, payout)
    out: bytes = transfer.export(validate=True)
    return out


def remittance(line: PayoutLine) -> str:
    text = f"ILA {line.milestone} claim {line.claim_id} enrolment {line.enrolment_id}"
    return text.strip()[:140]


def netted_remittance(payout: Payout, nettings: Sequence[Netting]) -> str:
    """The payout, what its claims owe, and each recovery netted with the reversed claim it
    comes from (ids in their 32-character form, so one recovery always fits 140)."""
    taken = ", ".join(f"{n.amount} for claim {_id(n.claim_id)}" for n in nettings)
    text = f"ILA payout {_id(payout.payout_id)} owed {payout.owed} less recovered {taken}"
    return text.strip()[:140]


def _stamp(transfer: Any, payout: Payout) -> None:
    """Deterministic header: the payout's id and creation time instead of random/now."""
    root = transfer._xml.find("CstmrCdtTrfInitn")
    header = root.find("GrpHdr")
    header.find("MsgId").text = _id(payout.payout_id)
    created: datetime = payout.created_at
    header.find("CreDtTm").text = created.strftime("%Y-%m-%dT%H:%M:%S")
    original = transfer._finalize_batch

    def finalize() -> None:
        original()
        for block in root.findall("PmtInf"):
            block.find("PmtInfId").text = _id(payout.payout_id)

    transfer._finalize_batch = finalize
