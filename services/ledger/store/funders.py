"""The SQL of funders and of their budgets' projection rows.

A budget's row is the head of its stream (version and last hash, locked for each append, as a
wallet row is) and the figures its events leave (``amount``, ``drawn``, ``draws``): a draw
reads the state from the locked row, and ``verify`` checks the row against the stream. The
table's own check (``drawn <= amount``) refuses an overspent budget whatever the code does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain.budgets import BudgetState
from services.ledger.store.chain import GENESIS
from services.ledger.store.events import Head
from shared.db import executemany, fetch_all, fetch_one

FUNDER_COLUMNS = "funder_id, kind, name, employer_id, region, created_at"


async def add_funder(
    session: AsyncSession,
    *,
    funder_id: str,
    kind: str,
    name: str,
    employer_id: str | None,
    region: str | None,
    created_by: str,
    now: datetime,
) -> bool:
    """Add the funder; False when its id is taken (nothing written)."""
    added = await session.scalar(
        text(
            "INSERT INTO ledger.funders (funder_id, kind, name, employer_id, region, "
            "created_by, created_at) VALUES (:f, :k, :n, :e, :r, :by, :at) "
            "ON CONFLICT (funder_id) DO NOTHING RETURNING true"
        ),
        {
            "f": funder_id,
            "k": kind,
            "n": name,
            "e": employer_id,
            "r": region,
            "by": created_by,
            "at": now,
        },
    )
    return bool(added)


async def funder(session: AsyncSession, funder_id: str) -> dict[str, Any] | None:
    sql = f"SELECT {FUNDER_COLUMNS} FROM ledger.funders WHERE funder_id = :f"
    return await fetch_one(session, dict, sql, {"f": funder_id})


async def registered(session: AsyncSession, funder_ids: Sequence[str]) -> set[str]:
    """Those of ``funder_ids`` that are registered funders, in one query."""
    if not funder_ids:
        return set()
    rows = await session.execute(
        text("SELECT funder_id FROM ledger.funders WHERE funder_id = ANY(:f)"),
        {"f": list(funder_ids)},
    )
    return {funder_id for (funder_id,) in rows}


async def budgets_of(session: AsyncSession, funder_id: str) -> list[dict[str, Any]]:
    sql = (
        "SELECT year, amount, drawn, draws, amount - drawn AS left, updated_at "
        "FROM ledger.budgets WHERE funder_id = :f ORDER BY year"
    )
    return await fetch_all(session, dict, sql, {"f": funder_id})


def _state(row: Any) -> tuple[BudgetState, Head | None]:
    if row.version == 0:
        return BudgetState(), None
    state = BudgetState(
        budget_id=row.budget_id,
        funder_id=row.funder_id,
        year=row.year,
        amount=row.amount,
        drawn=row.drawn,
        draws=row.draws,
        version=row.version,
    )
    return state, Head(row.version, row.head_hash)


LOCK_BUDGETS = (
    "SELECT budget_id, funder_id, year, amount, drawn, draws, version, head_hash "
    "FROM ledger.budgets WHERE budget_id = ANY(:ids) ORDER BY budget_id FOR UPDATE"
)


async def lock_budgets(
    session: AsyncSession, budget_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[BudgetState, Head | None]]:
    """Each budget's state and head, its row locked (in budget order: two batches never
    deadlock); a budget without a row answers as never set."""
    out: dict[uuid.UUID, tuple[BudgetState, Head | None]] = {
        b: (BudgetState(), None) for b in budget_ids
    }
    if budget_ids:
        for row in await session.execute(text(LOCK_BUDGETS), {"ids": list(budget_ids)}):
            out[row.budget_id] = _state(row)
    return out


async def lock_budget_to_set(
    session: AsyncSession, budget_id: uuid.UUID, funder_id: str, year: int, now: datetime
) -> tuple[BudgetState, Head | None]:
    """The budget's state and head, its row locked; created empty (version 0) if missing,
    so that two first settings of the same budget wait for each other."""
    await session.execute(
        text(
            "INSERT INTO ledger.budgets (budget_id, funder_id, year, amount, drawn, draws, "
            "version, head_hash, updated_at) VALUES (:b, :f, :y, 0, 0, 0, 0, :g, :at) "
            "ON CONFLICT (budget_id) DO NOTHING"
        ),
        {"b": budget_id, "f": funder_id, "y": year, "g": GENESIS, "at": now},
    )
    return (await lock_budgets(session, [budget_id]))[budget_id]


async def save_budgets(
    session: AsyncSession, states: Sequence[tuple[BudgetState, Head]], now: datetime
) -> None:
    """Write each budget's row as its last append left it."""
    rows: list[tuple[Any, ...]] = []
    for state, head in states:
        assert state.budget_id is not None and state.funder_id is not None
        rows.append(
            (
                state.budget_id,
                state.funder_id,
                state.year,
                state.amount,
                state.drawn,
                state.draws,
                head.version,
                head.hash,
                now,
            )
        )
    await executemany(
        session,
        "INSERT INTO ledger.budgets (budget_id, funder_id, year, amount, drawn, draws, version, "
        "head_hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (budget_id) DO UPDATE SET amount = EXCLUDED.amount, drawn = EXCLUDED.drawn, "
        "draws = EXCLUDED.draws, version = EXCLUDED.version, head_hash = EXCLUDED.head_hash, "
        "updated_at = EXCLUDED.updated_at",
        rows,
    )


async def every_budget(session: AsyncSession) -> dict[uuid.UUID, dict[str, Any]]:
    """Every budget row by budget id (for verify)."""
    rows: list[dict[str, Any]] = await fetch_all(session, dict, "SELECT * FROM ledger.budgets", {})
    return {r["budget_id"]: r for r in rows}
