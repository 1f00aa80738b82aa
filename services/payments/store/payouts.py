"""SQL of payout runs, payouts and their remittance lines: runs awaiting release whose
proposal expired, pages of runs, the lines of a payout leaving it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.payouts import PENDING_RUN, Payout, PayoutLine, PayoutRun
from services.payments.store.rows import many
from shared.approvals import Status

# a proposal nobody decided yet (the approvals table of shared.approvals)
UNDECIDED: Status = "pending"


async def payout_lines(session: AsyncSession, payout_id: uuid.UUID) -> list[PayoutLine]:
    return await many(
        session,
        PayoutLine,
        "SELECT * FROM payments.payout_lines WHERE payout_id = :p ORDER BY claim_id",
        {"p": payout_id},
    )


async def payouts_of_run(session: AsyncSession, run_id: uuid.UUID) -> list[Payout]:
    return await many(
        session,
        Payout,
        "SELECT * FROM payments.payouts WHERE run_id = :r ORDER BY provider_id",
        {"r": run_id},
    )


async def end_lines(session: AsyncSession, payout_id: uuid.UUID) -> None:
    """The payout's claims leave it (failed at the bank or never released)."""
    await session.execute(
        text("UPDATE payments.payout_lines SET live = false WHERE payout_id = :p"),
        {"p": payout_id},
    )


async def lapsed_runs(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Runs still awaiting release whose proposal expired undecided."""
    rows = await session.execute(
        text(
            "SELECT r.run_id FROM payments.payout_runs r JOIN payments.approvals a "
            "ON a.approval_id = r.approval_id WHERE r.status = :run_pending "
            "AND a.status = :approval_pending AND a.expires_at <= :now ORDER BY r.created_at"
        ),
        {"now": now, "run_pending": PENDING_RUN, "approval_pending": UNDECIDED},
    )
    return [r.run_id for r in rows]


async def runs_page(
    session: AsyncSession, agency_id: str | None, limit: int, after: uuid.UUID | None
) -> list[PayoutRun]:
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
    return await many(
        session,
        PayoutRun,
        f"SELECT * FROM payments.payout_runs WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, run_id DESC LIMIT :limit",
        params,
    )
