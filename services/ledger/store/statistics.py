"""The ledger's monitoring statistics: by year and funder, the credit granted, spent
(captured), released back to the lots, expired and reversed, summed from the events
themselves (each movement in the year it occurred, each lot's share under the lot's funder),
so that the figures are those an auditor rebuilds from the audit stream.

An agency sees the movements of the accounts it manages now (``account_agencies``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all

FIGURES = ("granted", "spent", "released", "expired", "reversed_granted", "reversed_spent")
"""What each funder's line of a year holds, in minor units."""


def _kind(name: str) -> str:
    # any schema version of the event: the fields read here are in all of them
    return f"e.type LIKE 'ila.ledger.{name}.v%'"


def _split(figure: str, field: str, kind: str) -> str:
    """The per-lot parts of an event's allocation list, as movements of ``figure``."""
    return (
        f"SELECT {figure} AS figure, CAST(a->>'lot_id' AS uuid) AS lot_id, "
        f"NULL::text AS funder_id, CAST(a->>'amount' AS bigint) AS amount "
        f"FROM jsonb_array_elements(coalesce(e.data->'{field}', '[]'::jsonb)) AS a "
        f"WHERE {_kind(kind)}"
    )


MOVEMENTS = f"""
SELECT m.figure, m.lot_id, m.funder_id, m.amount,
       CAST(EXTRACT(YEAR FROM CAST(e.data->>'occurred_at' AS timestamptz) AT TIME ZONE 'UTC')
            AS int) AS year
FROM ledger.events e
CROSS JOIN LATERAL (
    SELECT 'granted' AS figure, CAST(e.data->>'lot_id' AS uuid) AS lot_id,
           e.data->>'funder_id' AS funder_id, CAST(e.data->>'amount' AS bigint) AS amount
    WHERE {_kind("CreditsGranted")}
    UNION ALL {_split("'spent'", "allocations", "ReservationCaptured")}
    UNION ALL {_split("'released'", "released_allocations", "ReservationCaptured")}
    UNION ALL {_split("'released'", "allocations", "ReservationReleased")}
    UNION ALL
    SELECT 'expired', CAST(e.data->>'lot_id' AS uuid), NULL, CAST(e.data->>'amount' AS bigint)
    WHERE {_kind("LotExpired")}
    UNION ALL {
    _split(
        "CASE WHEN e.data->>'target_event' = 'ledger.CreditsGranted' "
        "THEN 'reversed_granted' ELSE 'reversed_spent' END",
        "allocations",
        "EntryReversed",
    )
}
) AS m
WHERE (CAST(:agency AS text) IS NULL OR e.stream_id IN
       (SELECT account_id FROM ledger.account_agencies WHERE agency_id = CAST(:agency AS text)))
"""
BY_YEAR_AND_FUNDER = f"""
SELECT mv.year, coalesce(mv.funder_id, l.funder_id, 'unknown') AS funder_id, mv.figure,
       CAST(sum(mv.amount) AS bigint) AS amount
FROM ({MOVEMENTS}) AS mv LEFT JOIN ledger.lots l ON l.lot_id = mv.lot_id
WHERE CAST(:year AS int) IS NULL OR mv.year = CAST(:year AS int)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


async def by_year_and_funder(
    session: AsyncSession, agency_id: str | None, year: int | None
) -> list[dict[str, Any]]:
    """Per year (``year`` only, when given), per funder: each of :data:`FIGURES`.
    ``agency_id``: only the accounts it manages (None: all)."""
    rows: list[dict[str, Any]] = await fetch_all(
        session, dict, BY_YEAR_AND_FUNDER, {"agency": agency_id, "year": year}
    )
    years: dict[int, dict[str, dict[str, int]]] = {}
    for r in rows:
        line = years.setdefault(r["year"], {}).setdefault(r["funder_id"], dict.fromkeys(FIGURES, 0))
        line[r["figure"]] += int(r["amount"])
    result: list[dict[str, Any]] = []
    for y in sorted(years):
        totals = {k: sum(line[k] for line in years[y].values()) for k in FIGURES}
        funders = [{"funder_id": f, **years[y][f]} for f in sorted(years[y])]
        result.append({"year": y, "by_funder": funders, "totals": totals})
    return result
