"""The learner's word on a claim: within the attestation window they attest the training
was given, or contest the claim (it is held until a release is approved); silence lets the
window lapse and the claim become payable."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.payments.domain.claims import AWAITING_WORD, Claim, ContestReason, Decided, held, ref
from services.payments.domain.errors import PaymentsError
from shared.events.payments import ClaimAttested, ClaimContested


def check_attestation_open(
    *, status: str, attestation: str, attest_until: datetime | None, now: datetime
) -> None:
    """The learner may attest or contest a claim that waits for their word, in the window."""
    if attestation != AWAITING_WORD or status not in ("approved", "held", "captured"):
        raise PaymentsError(
            "not_awaiting_attestation",
            f"the claim is {status} and its attestation {attestation}: nothing to attest",
        )
    if attest_until is None or now >= attest_until:
        raise PaymentsError(
            "attestation_window_closed", f"the attestation window closed at {attest_until}"
        )


def _word_awaited(claim: Claim, now: datetime) -> None:
    check_attestation_open(
        status=claim.status,
        attestation=claim.attestation,
        attest_until=claim.attest_until,
        now=now,
    )


def attest(claim: Claim, now: datetime) -> Decided:
    """The learner confirms the training was given (asked twice, answers the same)."""
    if claim.attestation == "attested":
        return claim, []
    _word_awaited(claim, now)
    after = replace(claim, attestation="attested", attested_at=now, updated_at=now)
    return after, [ClaimAttested(**ref(after))]


def contest(claim: Claim, reason: ContestReason, now: datetime) -> Decided:
    """The learner contests the claim: it is held, whatever it was, until resolved."""
    if claim.attestation == "contested":
        return claim, []
    _word_awaited(claim, now)
    after = replace(
        claim, attestation="contested", contested_at=now, contest_reason=reason, updated_at=now
    )
    if after.status != "held":
        after = held(after, "learner_contested", now)
    return after, [ClaimContested(**ref(after), reason_code=reason, account_id=after.account_id)]
