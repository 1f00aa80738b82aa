"""SQL of paid training leave: leave requests (the standing one of an enrolment, those past
their deadline, the one a compensation claim belongs to), the funders payments knows of, and
each course's workload in hours."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.leave import AWAITING_DECISION, LIVE, LeaveRequest
from services.payments.store.rows import many, one


async def has_live_request(session: AsyncSession, enrolment_id: uuid.UUID) -> bool:
    found = await session.scalar(
        text(
            "SELECT 1 FROM payments.leave_requests WHERE enrolment_id = :e "
            "AND status = ANY(:live) LIMIT 1"
        ),
        {"e": enrolment_id, "live": list(LIVE)},
    )
    return found is not None


async def requests_of(session: AsyncSession, enrolment_id: uuid.UUID) -> list[LeaveRequest]:
    return await many(
        session,
        LeaveRequest,
        "SELECT * FROM payments.leave_requests WHERE enrolment_id = :e "
        "ORDER BY requested_at, request_id",
        {"e": enrolment_id},
    )


async def due_requests(session: AsyncSession, now: datetime, limit: int) -> list[LeaveRequest]:
    """Requests still waiting for their employer past the deadline, locked (skipping those
    another sweep holds)."""
    return await many(
        session,
        LeaveRequest,
        "SELECT * FROM payments.leave_requests WHERE status = :waiting AND decide_by <= :now "
        "ORDER BY decide_by LIMIT :n FOR UPDATE SKIP LOCKED",
        {"waiting": AWAITING_DECISION, "now": now, "n": limit},
    )


async def request_of_claim(session: AsyncSession, claim_id: uuid.UUID) -> LeaveRequest | None:
    """The leave request whose compensation ``claim_id`` claims, locked."""
    return await one(
        session,
        LeaveRequest,
        "SELECT * FROM payments.leave_requests WHERE claim_id = :c FOR UPDATE",
        {"c": claim_id},
    )


async def put_funder(session: AsyncSession, funder_id: str, kind: str, at: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO payments.funders (funder_id, kind, registered_at) VALUES (:f, :k, :t) "
            "ON CONFLICT (funder_id) DO NOTHING"
        ),
        {"f": funder_id, "k": kind, "t": at},
    )


async def funder_kind(session: AsyncSession, funder_id: str) -> str | None:
    kind = await session.scalar(
        text("SELECT kind FROM payments.funders WHERE funder_id = :f"), {"f": funder_id}
    )
    return str(kind) if kind is not None else None


async def set_workload(
    session: AsyncSession, course_id: uuid.UUID, version: int, hours: int
) -> None:
    """The workload of the course's ``version`` (an older version changes nothing)."""
    await session.execute(
        text(
            "UPDATE payments.courses SET workload_hours = :h WHERE course_id = :c AND version = :v"
        ),
        {"c": course_id, "v": version, "h": hours},
    )


async def workload(session: AsyncSession, course_id: uuid.UUID) -> int | None:
    hours = await session.scalar(
        text("SELECT workload_hours FROM payments.courses WHERE course_id = :c"),
        {"c": course_id},
    )
    return int(hours) if hours is not None else None
