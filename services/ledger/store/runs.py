"""The SQL of entitlement policies and allocation runs, and the locks that keep one runner
per allocation and one running allocation per year.

A policy row exists only once a second person approved it (``approved_by``, ``approval_id``);
a row without an approval (stored before approvals existed) is not a policy in force. An
allocation run carries the policy it runs with (``policy``, copied when its proposal was
approved), so a resumed run grants exactly what was approved.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_one

POLICY_COLUMNS = "year, policy, updated_by, updated_at, proposed_by, approved_by, approval_id"


async def approved_policy(session: AsyncSession, year: int) -> dict[str, Any] | None:
    """The approved policy of ``year`` with who proposed and approved it, or None."""
    sql = (
        f"SELECT {POLICY_COLUMNS} FROM ledger.policies WHERE year = :y AND approval_id IS NOT NULL"
    )
    return await fetch_one(session, dict, sql, {"y": year})


async def put_approved_policy(
    session: AsyncSession,
    year: int,
    policy: dict[str, Any],
    *,
    proposed_by: str,
    approved_by: str,
    approval_id: uuid.UUID,
) -> None:
    await session.execute(
        text(
            "INSERT INTO ledger.policies (year, policy, updated_by, proposed_by, approved_by, "
            "approval_id) VALUES (:y, CAST(:p AS jsonb), :by, :by, :ok, :aid) "
            "ON CONFLICT (year) DO UPDATE SET policy = EXCLUDED.policy, updated_by = "
            "EXCLUDED.updated_by, proposed_by = EXCLUDED.proposed_by, approved_by = "
            "EXCLUDED.approved_by, approval_id = EXCLUDED.approval_id, updated_at = now()"
        ),
        {
            "y": year,
            "p": json.dumps(policy),
            "by": proposed_by,
            "ok": approved_by,
            "aid": approval_id,
        },
    )


async def count_allocatable(session: AsyncSession) -> int:
    n = await session.scalar(
        text("SELECT count(*) FROM ledger.wallets WHERE status IN ('open', 'suspended')")
    )
    return int(n or 0)


ALLOCATION_COLUMNS = (
    "allocation_id, year, status, requested_by, total_accounts, processed, granted_count, "
    "granted_amount, skipped, cursor, error, failure_code, policy, approval_id, approved_by, "
    "agency_id, started_at, updated_at, finished_at"
)


async def create_allocation(
    session: AsyncSession,
    allocation_id: uuid.UUID,
    year: int,
    by: str,
    total: int,
    *,
    policy: dict[str, Any],
    approval_id: uuid.UUID | None = None,
    approved_by: str | None = None,
    agency_id: str | None = None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO ledger.allocations (allocation_id, year, status, requested_by, "
            "total_accounts, policy, approval_id, approved_by, agency_id) VALUES (:id, :y, "
            "'running', :by, :t, CAST(:policy AS jsonb), :aid, :ok, :agency)"
        ),
        {
            "id": allocation_id,
            "y": year,
            "by": by,
            "t": total,
            "policy": json.dumps(policy),
            "aid": approval_id,
            "ok": approved_by,
            "agency": agency_id,
        },
    )


async def get_allocation(
    session: AsyncSession, allocation_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    sql = f"SELECT {ALLOCATION_COLUMNS} FROM ledger.allocations WHERE allocation_id = :id"
    return await fetch_one(
        session, dict, sql + (" FOR UPDATE" if lock else ""), {"id": allocation_id}
    )


async def running_allocation(session: AsyncSession, year: int) -> dict[str, Any] | None:
    sql = (
        f"SELECT {ALLOCATION_COLUMNS} FROM ledger.allocations WHERE year = :y "
        "AND status = 'running' ORDER BY started_at LIMIT 1"
    )
    return await fetch_one(session, dict, sql, {"y": year})


async def running_allocations(session: AsyncSession) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "SELECT allocation_id FROM ledger.allocations WHERE status = 'running' "
            "ORDER BY started_at"
        )
    )
    return [r[0] for r in rows]


async def advance_allocation(
    session: AsyncSession,
    allocation_id: uuid.UUID,
    *,
    cursor: uuid.UUID | None,
    processed: int,
    granted: int,
    amount: int,
    finished: bool,
) -> None:
    await session.execute(
        text(
            "UPDATE ledger.allocations SET cursor = COALESCE(:cursor, cursor), processed = "
            "processed + :p, granted_count = granted_count + :g, granted_amount = "
            "granted_amount + :amt, skipped = skipped + :p - :g, updated_at = now(), "
            "status = CASE WHEN :fin THEN 'finished' ELSE status END, finished_at = CASE "
            "WHEN :fin THEN now() ELSE finished_at END WHERE allocation_id = :id"
        ),
        {
            "id": allocation_id,
            "cursor": cursor,
            "p": processed,
            "g": granted,
            "amt": amount,
            "fin": finished,
        },
    )


async def fail_allocation(
    session: AsyncSession, allocation_id: uuid.UUID, code: str, reason: str
) -> bool:
    """End a running allocation as ``failed`` with why; False when it was not running."""
    done = await session.scalar(
        text(
            "UPDATE ledger.allocations SET status = 'failed', failure_code = :code, "
            "error = :reason, updated_at = now(), finished_at = now() "
            "WHERE allocation_id = :id AND status = 'running' RETURNING allocation_id"
        ),
        {"id": allocation_id, "code": code, "reason": reason[:1000]},
    )
    return done is not None


async def try_lock_run(session: AsyncSession, allocation_id: uuid.UUID) -> bool:
    """Whether this transaction is the one runner of the allocation (never waits)."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
        {"k": f"allocation:{allocation_id}"},
    )
    return bool(locked)


async def lock_year(session: AsyncSession, year: int) -> None:
    """Serialise, until the transaction ends, whoever opens an allocation run for ``year``."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"allocation-year:{year}"}
    )
