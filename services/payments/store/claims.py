"""SQL of claims: those of an enrolment, the one awaiting a capture, a provider's unpaid
ones, the payable ones of a payout run, attestation windows that passed, and claims moved
together with their payout."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.claims import (
    AWAITING_WORD,
    HOLDABLE,
    PAYABLE_ATTESTATIONS,
    SILENCE,
    TRANSITIONS,
    Claim,
    ClaimMove,
    after,
)
from services.payments.domain.recoveries import Recovery
from services.payments.domain.reservations import Reservation
from services.payments.store.read_models import PROVIDER_STANDING, standing
from services.payments.store.rows import many, one, row_of
from shared.db import fetch_rows


async def _claim(session: AsyncSession, where: str, params: Mapping[str, Any]) -> Claim | None:
    """The claim ``where`` selects (the SQL condition of ``payments.claims``), if any."""
    return await one(session, Claim, f"SELECT * FROM payments.claims WHERE {where}", params)


async def _claims(session: AsyncSession, where: str, params: Mapping[str, Any]) -> list[Claim]:
    """The claims ``where`` selects (the SQL condition, then any order and lock)."""
    return await many(session, Claim, f"SELECT * FROM payments.claims WHERE {where}", params)


_STANDING = PROVIDER_STANDING.replace(":provider", "i.p")  # each claim's provider
_SUBMISSIONS = (
    f"SELECT (SELECT {row_of(Reservation)} "
    "FROM payments.reservations WHERE reservation_id = i.r FOR UPDATE), "
    "ARRAY(SELECT ROW(milestone, status) FROM payments.claims "
    f"WHERE enrolment_id = i.e ORDER BY claimed_at), {_STANDING} "
    "FROM unnest(CAST(:r AS uuid[]), CAST(:e AS uuid[]), CAST(:p AS text[])) "
    "WITH ORDINALITY AS i(r, e, p, n) ORDER BY n"
)

Submission = tuple[Reservation | None, list[tuple[str, str]], str | None]
"""What deciding a claim reads: the enrolment's reservation (None without one), the
(milestone, status) of the enrolment's earlier claims in the order they came, and the
provider's standing (``read_models.provider_status``)."""


async def submission_inputs(
    session: AsyncSession,
    *,
    reservation_id: uuid.UUID | None,
    enrolment_id: uuid.UUID,
    provider_id: str,
    today: date,
) -> Submission:
    """What deciding one claim reads (:func:`submission_inputs_many` of one)."""
    asks = [(reservation_id, enrolment_id, provider_id)]
    return (await submission_inputs_many(session, asks, today))[0]


async def submission_inputs_many(
    session: AsyncSession,
    asks: Sequence[tuple[uuid.UUID | None, uuid.UUID, str]],
    today: date,
) -> list[Submission]:
    """What deciding each claim of ``asks`` (its enrolment's reservation, the enrolment, the
    provider) reads, in one statement: the reservations locked until the transaction ends,
    in key order; the providers' standing today."""
    if not asks:
        return []
    order = sorted(range(len(asks)), key=lambda i: (asks[i][0] is None, str(asks[i][0])))
    found = await fetch_rows(
        session,
        _SUBMISSIONS,
        {
            "r": [asks[i][0] for i in order],
            "e": [asks[i][1] for i in order],
            "p": [asks[i][2] for i in order],
        },
    )
    out: dict[int, Submission] = {}
    for i, (reservation, earlier, provider) in zip(order, found, strict=True):
        out[i] = (
            Reservation(*reservation) if reservation is not None else None,
            [(milestone, status) for milestone, status in earlier],
            standing(provider, today),
        )
    return [out[i] for i in range(len(asks))]


async def claims_of(session: AsyncSession, enrolment_id: uuid.UUID) -> list[Claim]:
    return await _claims(session, "enrolment_id = :e ORDER BY claimed_at", {"e": enrolment_id})


async def lapse_attestations(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Claims whose attestation window passed uncontested become payable (``lapsed``)."""
    rows = await session.execute(
        text(
            "UPDATE payments.claims SET attestation = :silence, updated_at = :now "
            "WHERE claim_id IN (SELECT claim_id FROM payments.claims "
            "WHERE attestation = :awaiting AND attest_until <= :now "
            "ORDER BY attest_until LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING claim_id"
        ),
        {"now": now, "n": limit, "silence": SILENCE, "awaiting": AWAITING_WORD},
    )
    return len(rows.all())


async def claim_awaiting_capture(session: AsyncSession, reservation_id: uuid.UUID) -> Claim | None:
    return await _claim(
        session,
        "reservation_id = :r AND capture_requested AND captured = 0 FOR UPDATE",
        {"r": reservation_id},
    )


async def claims_captured_from(session: AsyncSession, reservation_id: uuid.UUID) -> list[Claim]:
    """The claims paid (or to be paid) from captures of this reservation, locked."""
    return await _claims(
        session,
        "reservation_id = :r AND captured > 0 ORDER BY claimed_at FOR UPDATE",
        {"r": reservation_id},
    )


async def recovery_of(session: AsyncSession, claim_id: uuid.UUID) -> Recovery | None:
    return await one(
        session, Recovery, "SELECT * FROM payments.recoveries WHERE claim_id = :c", {"c": claim_id}
    )


async def claim_awaiting_reservation(
    session: AsyncSession, reservation_id: uuid.UUID
) -> Claim | None:
    """A claim an operator retried that waits for this (new) reservation to be captured."""
    return await _claim(
        session,
        "reservation_id = :r AND status = 'approved' "
        "AND NOT capture_requested AND captured = 0 FOR UPDATE",
        {"r": reservation_id},
    )


async def unpaid_claims_of_provider(session: AsyncSession, provider_id: str) -> list[Claim]:
    return await _claims(
        session,
        "provider_id = :p AND status = ANY(:holdable) FOR UPDATE",
        {"p": provider_id, "holdable": list(HOLDABLE)},
    )


async def payable_claims_in_scope(session: AsyncSession, agency_id: str | None) -> list[Claim]:
    """Captured claims in no payout whose learner attested (or let the window pass
    uncontested), of the agency's providers (all with ``None``), locked until the run
    commits."""
    scope = (
        "AND provider_id IN (SELECT provider_id FROM payments.providers WHERE agency_id = :ag) "
        if agency_id is not None
        else ""
    )
    params: dict[str, Any] = {
        "_attested": list(PAYABLE_ATTESTATIONS),
        "_bindable": sorted(TRANSITIONS["bind"][0]),
    }
    if agency_id is not None:
        params["ag"] = agency_id
    return await _claims(
        session,
        "status = ANY(:_bindable) AND payout_id IS NULL "
        "AND captured > 0 AND attestation = ANY(CAST(:_attested AS text[])) "
        f"{scope}ORDER BY provider_id, captured_at, claim_id FOR UPDATE",
        params,
    )


async def move_claims(
    session: AsyncSession, claim_ids: Sequence[uuid.UUID], move: ClaimMove, **fields: Any
) -> None:
    """Claims moved together with their payout (``bind``, ``unbind``, ``pay``...): the status
    the claims' transition table gives ``move``, and ``fields``."""
    fields = {"status": after(move), **fields}
    sets = ", ".join(f"{c} = :{c}" for c in fields)
    await session.execute(
        text(f"UPDATE payments.claims SET {sets} WHERE claim_id = ANY(:_ids)"),
        {"_ids": list(claim_ids), **fields},
    )
