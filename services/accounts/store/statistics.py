"""The monitoring statistics of accounts: the holders active during a year by region, age
band and need tier, and those of them who trained that year (overall and by ISCED-F broad
field), from the accounts and the trainings learnt from payments' events.

A holder is active during year Y when the account was opened before Y ended and not closed
before Y began (a suspended account still counts). The age band is the age reached in Y
(Y minus the birth year). Region, age and need tier are the account's as they are now; an
erased account has neither region nor birth year and counts as ``unknown``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver, fetch_all
from shared.statistics import year_bounds

AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("18-24", 24),
    ("25-34", 34),
    ("35-44", 44),
    ("45-54", 54),
    ("55-64", 64),
    ("65+", None),
)
"""The age bands of the Adult Education Survey (label, oldest age in it), youngest first."""
UNKNOWN = "unknown"


def _age_band_sql() -> str:
    cases = " ".join(
        f"WHEN CAST(:year AS int) - birth_year <= {upper} THEN '{label}'"
        for label, upper in AGE_BANDS
        if upper is not None
    )
    return f"CASE WHEN birth_year IS NULL THEN '{UNKNOWN}' {cases} ELSE '{AGE_BANDS[-1][0]}' END"


HOLDERS = f"""
holders AS (
    SELECT account_id, coalesce(region, '{UNKNOWN}') AS region, need_tier,
           {_age_band_sql()} AS age_band
    FROM accounts.accounts
    WHERE opened_at < :year_end AND (closed_at IS NULL OR closed_at >= :year_start)
      AND (CAST(:agency AS text) IS NULL OR agency_id = CAST(:agency AS text))
      AND (CAST(:region AS text) IS NULL OR region = CAST(:region AS text))
),
trained AS (SELECT DISTINCT account_id FROM accounts.trainings WHERE year = :year)
"""
BY_GROUP = f"""
WITH {HOLDERS}
SELECT GROUPING(h.region) AS no_region, GROUPING(h.age_band) AS no_age_band,
       GROUPING(h.need_tier) AS no_need_tier, h.region, h.age_band, h.need_tier,
       count(*) AS holders, count(t.account_id) AS trained
FROM holders h LEFT JOIN trained t USING (account_id)
GROUP BY GROUPING SETS ((h.region), (h.age_band), (h.need_tier), ())
"""
BY_FIELD = f"""
WITH {HOLDERS}
SELECT coalesce(left(t.isced_field, 2), '{UNKNOWN}') AS isced_field,
       count(DISTINCT t.account_id) AS trained
FROM accounts.trainings t JOIN holders h USING (account_id)
WHERE t.year = :year GROUP BY 1 ORDER BY 1
"""
REGIONS = """
SELECT DISTINCT region FROM accounts.accounts
WHERE region IS NOT NULL AND (CAST(:agency AS text) IS NULL OR agency_id = CAST(:agency AS text))
ORDER BY region
"""


async def yearly(
    session: AsyncSession, year: int, agency_id: str | None, region: str | None
) -> dict[str, Any]:
    """Holders and trained in ``year``: in total and by region, age band, need tier and
    (trained only) ISCED-F broad field. ``agency_id``: only its accounts (None: all);
    ``region``: only that region's."""
    year_start, year_end = year_bounds(year)
    params = {
        "year": year,
        "year_start": year_start,
        "year_end": year_end,
        "agency": agency_id,
        "region": region,
    }
    result: dict[str, Any] = {
        "holders": 0,
        "trained": 0,
        "by_region": [],
        "by_age_band": [],
        "by_need_tier": [],
    }
    groups: list[dict[str, Any]] = await fetch_all(session, dict, BY_GROUP, params)
    for r in groups:
        figures = {"holders": int(r["holders"]), "trained": int(r["trained"])}
        if r["no_region"] and r["no_age_band"] and r["no_need_tier"]:
            result.update(figures)
        elif not r["no_region"]:
            result["by_region"].append({"key": r["region"], **figures})
        elif not r["no_age_band"]:
            result["by_age_band"].append({"key": r["age_band"], **figures})
        else:
            result["by_need_tier"].append({"key": r["need_tier"], **figures})
    bands = [label for label, _ in AGE_BANDS] + [UNKNOWN]
    result["by_region"].sort(key=lambda g: g["key"])
    result["by_age_band"].sort(key=lambda g: bands.index(g["key"]))
    result["by_need_tier"].sort(key=lambda g: g["key"])
    fields: list[dict[str, Any]] = await fetch_all(session, dict, BY_FIELD, params)
    result["by_isced_field"] = [
        {"key": r["isced_field"], "trained": int(r["trained"])} for r in fields
    ]
    return result


async def regions(session: AsyncSession, agency_id: str | None) -> list[str]:
    """The regions of the accounts in scope (what a filter may name)."""
    rows = await session.execute(text(REGIONS), {"agency": agency_id})
    return [r[0] for r in rows]


async def record_training(
    session: AsyncSession,
    enrolment_id: uuid.UUID,
    account_id: uuid.UUID,
    isced_field: str | None,
    confirmed_at: datetime,
) -> None:
    """An enrolment confirmed: its learner trained in that year (once per enrolment)."""
    await session.execute(
        text(
            "INSERT INTO accounts.trainings (enrolment_id, account_id, year, isced_field, "
            "confirmed_at) VALUES (:e, :a, :y, :f, :t) ON CONFLICT (enrolment_id) DO NOTHING"
        ),
        {
            "e": enrolment_id,
            "a": account_id,
            "y": confirmed_at.astimezone(UTC).year,
            "f": isced_field,
            "t": confirmed_at,
        },
    )


async def forget_training(session: AsyncSession, enrolment_id: uuid.UUID) -> None:
    """An enrolment cancelled before any training was given counts no more."""
    await session.execute(
        text("DELETE FROM accounts.trainings WHERE enrolment_id = :e"), {"e": enrolment_id}
    )


Training = tuple[uuid.UUID, uuid.UUID, str | None, datetime]
"""An enrolment confirmed: enrolment id, account id, ISCED-F field, when confirmed."""


async def record_trainings(session: AsyncSession, trainings: Sequence[Training]) -> None:
    """Many :func:`record_training` in one statement (each enrolment once)."""
    if trainings:
        await (await driver(session)).execute(
            "INSERT INTO accounts.trainings (enrolment_id, account_id, year, isced_field, "
            "confirmed_at) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::smallint[], "
            "$4::text[], $5::timestamptz[]) ON CONFLICT (enrolment_id) DO NOTHING",
            [t[0] for t in trainings],
            [t[1] for t in trainings],
            [t[3].astimezone(UTC).year for t in trainings],
            [t[2] for t in trainings],
            [t[3] for t in trainings],
        )


async def forget_trainings(session: AsyncSession, enrolment_ids: Sequence[uuid.UUID]) -> None:
    """Many :func:`forget_training` in one statement."""
    if enrolment_ids:
        await (await driver(session)).execute(
            "DELETE FROM accounts.trainings WHERE enrolment_id = ANY($1::uuid[])",
            list(enrolment_ids),
        )
