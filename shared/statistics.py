"""The frame of a year's monitoring figures, the same in every service: the instants a
calendar year spans (UTC) and its twelve months, each with its figures at zero."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The first instant of ``year`` and of the year after (UTC)."""
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def year_params(year: int, agency_id: str | None) -> dict[str, Any]:
    """The parameters of a query over ``year`` (``start`` included, ``end`` excluded) in
    the scope of ``agency_id`` (``agency``; None: all)."""
    start, end = year_bounds(year)
    return {"start": start, "end": end, "agency": agency_id}


def twelve_months(year: int, zero: Callable[[], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The twelve months of ``year`` by ``YYYY-MM``, each ``{"month": "YYYY-MM"}`` and the
    figures ``zero()`` answers (called once a month, so they may be changed in place)."""
    return {f"{year}-{m:02d}": {"month": f"{year}-{m:02d}", **zero()} for m in range(1, 13)}
