"""SQL for payout safety (the payments store, continued): the registering agency of each
provider, payee changes and their verification, payable claims in an agency's scope, runs
awaiting release. Rows come back as plain dicts; nothing here commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain import PAYABLE_ATTESTATIONS
from services.payments.store import _all, _one

Row = dict[str, Any]


async def provider_agency(session: AsyncSession, provider_id: str) -> tuple[bool, str | None]:
    """Whether payments knows the provider, and the agency that registered it."""
    row = await _one(
        session,
        "SELECT agency_id FROM payments.providers WHERE provider_id = :p",
        {"p": provider_id},
    )
    return (row is not None, row["agency_id"] if row else None)


async def payee_for_update(session: AsyncSession, provider_id: str) -> Row | None:
    return await _one(
        session,
        "SELECT * FROM payments.payees WHERE provider_id = :p FOR UPDATE",
        {"p": provider_id},
    )


async def change_payee(
    session: AsyncSession,
    provider_id: str,
    *,
    name: str,
    iban: str,
    bic: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Approved new bank details: they apply from ``now``, unverified."""
    await session.execute(
        text(
            "INSERT INTO payments.payees (provider_id, name, iban, bic, updated_by, updated_at, "
            "source, effective_at) VALUES (:p, :n, :i, :b, :a, :t, 'change', :t) "
            "ON CONFLICT (provider_id) DO UPDATE SET name = EXCLUDED.name, iban = EXCLUDED.iban, "
            "bic = EXCLUDED.bic, updated_by = EXCLUDED.updated_by, "
            "updated_at = EXCLUDED.updated_at, source = 'change', "
            "effective_at = EXCLUDED.effective_at, verified_at = NULL, verified_by = NULL"
        ),
        {"p": provider_id, "n": name, "i": iban, "b": bic, "a": actor, "t": now},
    )


async def verify_payee(session: AsyncSession, provider_id: str, actor: str, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE payments.payees SET verified_at = :t, verified_by = :a WHERE provider_id = :p"
        ),
        {"p": provider_id, "a": actor, "t": now},
    )


async def payable_claims_in_scope(session: AsyncSession, agency_id: str | None) -> list[Row]:
    """Captured claims in no payout whose learner attested (or let the window pass
    uncontested), of the agency's providers (all with ``None``), locked until the run
    commits."""
    scope = (
        "AND provider_id IN (SELECT provider_id FROM payments.providers WHERE agency_id = :ag) "
        if agency_id is not None
        else ""
    )
    params: dict[str, Any] = {"_attested": list(PAYABLE_ATTESTATIONS)}
    if agency_id is not None:
        params["ag"] = agency_id
    return await _all(
        session,
        "SELECT * FROM payments.claims WHERE status = 'captured' AND payout_id IS NULL "
        "AND captured > 0 AND attestation = ANY(CAST(:_attested AS text[])) "
        f"{scope}ORDER BY provider_id, captured_at, claim_id FOR UPDATE",
        params,
    )


async def end_lines(session: AsyncSession, payout_id: uuid.UUID) -> None:
    """The payout's claims leave it (failed at the bank or never released)."""
    await session.execute(
        text("UPDATE payments.payout_lines SET live = false WHERE payout_id = :p"),
        {"p": payout_id},
    )


async def update_run(session: AsyncSession, run_id: uuid.UUID, **fields: Any) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in fields)
    await session.execute(
        text(f"UPDATE payments.payout_runs SET {sets} WHERE run_id = :_r"),
        {"_r": run_id, **fields},
    )


async def run_for_update(session: AsyncSession, run_id: uuid.UUID) -> Row | None:
    return await _one(
        session, "SELECT * FROM payments.payout_runs WHERE run_id = :r FOR UPDATE", {"r": run_id}
    )


async def lapsed_runs(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Runs still awaiting release whose proposal expired undecided."""
    rows = await session.execute(
        text(
            "SELECT r.run_id FROM payments.payout_runs r JOIN payments.approvals a "
            "ON a.approval_id = r.approval_id WHERE r.status = 'proposed' "
            "AND a.status = 'pending' AND a.expires_at <= :now ORDER BY r.created_at"
        ),
        {"now": now},
    )
    return [r.run_id for r in rows]


async def runs_page(
    session: AsyncSession, agency_id: str | None, limit: int, after: uuid.UUID | None
) -> list[Row]:
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if agency_id is not None:
        where.append("agency_id = :ag")
        params["ag"] = agency_id
    if after is not None:
        where.append(
            "(created_at, run_id) < (SELECT created_at, run_id FROM payments.payout_runs "
            "WHERE run_id = :after)"
        )
        params["after"] = after
    return await _all(
        session,
        f"SELECT * FROM payments.payout_runs WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, run_id DESC LIMIT :limit",
        params,
    )
