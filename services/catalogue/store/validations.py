"""Validations of prior learning: what was validated, how, and the credential issued; and
their count by month and EQF level (the monitoring)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all, fetch_one
from shared.statistics import twelve_months, year_params

COLUMNS = (
    "validation_id, enrolment_id, account_id, provider_id, course_id, course_version, "
    "learning_outcomes, eqf_level, method, assessed_on, assessor_body, credential_id, "
    "recorded_at"
)


@dataclass(frozen=True)
class ValidationRow:
    validation_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: uuid.UUID
    course_id: uuid.UUID
    course_version: int
    learning_outcomes: list[str]
    eqf_level: int
    method: str
    assessed_on: date
    assessor_body: str
    credential_id: uuid.UUID
    recorded_at: datetime


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(
        text(
            f"INSERT INTO catalogue.validations ({COLUMNS}, recorded_by) VALUES "
            "(:validation_id, :enrolment_id, :account_id, :provider_id, :course_id, "
            ":course_version, CAST(:learning_outcomes AS jsonb), :eqf_level, :method, "
            ":assessed_on, :assessor_body, :credential_id, :recorded_at, :recorded_by)"
        ),
        {**row, "learning_outcomes": json.dumps(row["learning_outcomes"], ensure_ascii=False)},
    )


async def get(session: AsyncSession, validation_id: uuid.UUID) -> ValidationRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.validations WHERE validation_id = :v"
    return await fetch_one(session, ValidationRow, sql, {"v": validation_id})


async def by_enrolment(session: AsyncSession, enrolment_id: uuid.UUID) -> ValidationRow | None:
    sql = f"SELECT {COLUMNS} FROM catalogue.validations WHERE enrolment_id = :e"
    return await fetch_one(session, ValidationRow, sql, {"e": enrolment_id})


BY_MONTH = """
SELECT to_char(v.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, v.eqf_level,
       count(*) AS validations
FROM catalogue.validations v
WHERE v.recorded_at >= :start AND v.recorded_at < :end
  AND (CAST(:agency AS text) IS NULL OR v.account_id IN
       (SELECT account_id FROM catalogue.accounts WHERE agency_id = CAST(:agency AS text)))
GROUP BY 1, 2
"""


async def yearly(session: AsyncSession, year: int, agency_id: str | None) -> dict[str, Any]:
    """The validations recorded in each month of ``year``, in total and by EQF level (of
    the accounts ``agency_id`` manages; None: all)."""
    months = twelve_months(
        year,
        lambda: {"validations": 0, "by_eqf_level": {str(level): 0 for level in range(1, 9)}},
    )
    params = year_params(year, agency_id)
    found: list[dict[str, Any]] = await fetch_all(session, dict, BY_MONTH, params)
    for r in found:
        month = months[r["month"]]
        month["validations"] += int(r["validations"])
        month["by_eqf_level"][str(r["eqf_level"])] += int(r["validations"])
    by_month = list(months.values())
    return {
        "by_month": by_month,
        "totals": {
            "validations": sum(m["validations"] for m in by_month),
            "by_eqf_level": {
                str(level): sum(m["by_eqf_level"][str(level)] for m in by_month)
                for level in range(1, 9)
            },
        },
    }
