"""Read models the catalogue keeps from other services' events: the agency managing each
account (scope of credentials) and the enrolments holding a seat in each session (a session
with enrolments is not removed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver


async def set_account_agency(session: AsyncSession, account_id: uuid.UUID, agency_id: str) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.accounts (account_id, agency_id) VALUES (:a, :g) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "updated_at = now()"
        ),
        {"a": account_id, "g": agency_id},
    )


async def set_account_agencies(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, str]]
) -> None:
    """Many :func:`set_account_agency` in one statement: (account_id, agency_id), each
    account once."""
    if rows:
        await (await driver(session)).execute(
            "INSERT INTO catalogue.accounts (account_id, agency_id) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id, "
            "updated_at = now()",
            *zip(*rows, strict=True),
        )


async def account_agency(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    agency: str | None = await session.scalar(
        text("SELECT agency_id FROM catalogue.accounts WHERE account_id = :a"), {"a": account_id}
    )
    return agency


async def set_seat(
    session: AsyncSession,
    enrolment_id: uuid.UUID,
    course_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    live: bool,
) -> None:
    """``live``: the enrolment holds a seat (unless it ended already: an end is final).
    Not ``live``: cancelled or rejected, the seat is free (recorded even if the confirmation
    is late)."""
    on_conflict = "DO NOTHING" if live else "DO UPDATE SET live = FALSE, updated_at = now()"
    await session.execute(
        text(
            "INSERT INTO catalogue.session_enrolments (enrolment_id, course_id, session_id, live) "
            f"VALUES (:e, :c, :s, :live) ON CONFLICT (enrolment_id) {on_conflict}"
        ),
        {"e": enrolment_id, "c": course_id, "s": session_id, "live": live},
    )


async def set_seats(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID]], *, live: bool
) -> None:
    """Many :func:`set_seat` in one statement: (enrolment_id, course_id, session_id), each
    enrolment once."""
    if rows:
        on_conflict = "DO NOTHING" if live else "DO UPDATE SET live = FALSE, updated_at = now()"
        await (await driver(session)).execute(
            "INSERT INTO catalogue.session_enrolments (enrolment_id, course_id, session_id, live) "
            f"SELECT e, c, s, {'TRUE' if live else 'FALSE'} "
            "FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS v(e, c, s) "
            f"ON CONFLICT (enrolment_id) {on_conflict}",
            *zip(*rows, strict=True),
        )


async def sessions_with_enrolments(
    session: AsyncSession, course_id: uuid.UUID, session_ids: Iterable[uuid.UUID]
) -> frozenset[str]:
    """Those of ``session_ids`` of the course that have a live enrolment."""
    ids = [str(s) for s in session_ids]
    if not ids:
        return frozenset()
    rows = await session.execute(
        text(
            "SELECT DISTINCT session_id FROM catalogue.session_enrolments "
            "WHERE live AND course_id = :c AND session_id = ANY(CAST(:s AS uuid[]))"
        ),
        {"c": course_id, "s": ids},
    )
    return frozenset(str(r.session_id) for r in rows)
