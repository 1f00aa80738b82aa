"""The SQL of funders' co-funding rules: adopting one (the approval's action), the rules in
force in a year (read by every reservation's transaction), a funder's rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain.cofunding import CofundingRule
from shared.db import fetch_all

RULE_FIELDS = (
    "rule_id",
    "funder_id",
    "funder_kind",
    "year",
    "rank",
    "share",
    "cap",
    "employer_id",
    "region",
    "isced_prefix",
    "eqf_min",
    "eqf_max",
)
COLUMNS = ", ".join((*RULE_FIELDS, "approval_id", "adopted_at"))


async def add_rule(
    session: AsyncSession,
    *,
    rule_id: uuid.UUID,
    funder_id: str,
    funder_kind: str,
    terms: dict[str, Any],
    approval_id: uuid.UUID,
    now: datetime,
) -> bool:
    """Adopt the rule (False: it was adopted already)."""
    found = await session.execute(
        text(
            "INSERT INTO ledger.cofunding_rules (rule_id, funder_id, funder_kind, year, share, "
            "cap, employer_id, region, isced_prefix, eqf_min, eqf_max, approval_id, adopted_at) "
            "VALUES (:rule_id, :funder_id, :funder_kind, :year, :share, :cap, :employer_id, "
            ":region, :isced_prefix, :eqf_min, :eqf_max, :approval_id, :at) "
            "ON CONFLICT (rule_id) DO NOTHING RETURNING rule_id"
        ),
        {
            "rule_id": rule_id,
            "funder_id": funder_id,
            "funder_kind": funder_kind,
            "approval_id": approval_id,
            "at": now,
            **{k: terms.get(k) for k in RULE_FIELDS[3:] if k != "rank"},
        },
    )
    return found.scalar() is not None


async def rules_in_force(session: AsyncSession, year: int) -> list[CofundingRule]:
    """Every rule drawing on a budget of ``year``."""
    fields = ", ".join(RULE_FIELDS)
    sql = f"SELECT {fields} FROM ledger.cofunding_rules WHERE year = :y ORDER BY rank"
    return await fetch_all(session, CofundingRule, sql, {"y": year})


async def rules_of(session: AsyncSession, funder_id: str) -> list[dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM ledger.cofunding_rules WHERE funder_id = :f ORDER BY rank"
    return await fetch_all(session, dict, sql, {"f": funder_id})


__all__ = ["add_rule", "rules_in_force", "rules_of"]
