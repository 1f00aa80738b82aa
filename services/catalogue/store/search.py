"""The public registry's search: approved courses of eligible providers only.

Full text through the GIN-indexed ``search`` tsvector (``@@`` with a ``websearch_to_tsquery``
query, ranked with ``ts_rank``), facets counted in the same round trip, keyset pagination
on (rank, course id) or (title, course id) so that pages never repeat or skip a course.
The query is parsed in each course's language, with the configuration the course was
indexed with (``search_config``): a French "formations" finds a French "Formation", a
German "Schweißkurse" a German "Schweißkurs". It is parsed once per configuration (a small
derived table joined on ``search_config``), so that each probe can use the GIN index.
Facet counts are *disjunctive*: each facet is counted with every other filter applied but
not its own, so a reader filtering on EQF 4 still sees how many courses EQF 5 would give.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain import isced
from services.catalogue.store.courses import TS_CONFIGS

ELIGIBLE = "c.status = 'approved' AND p.status = 'accredited' AND p.qa_valid_until >= :today"
COURSES = "catalogue.courses c JOIN catalogue.providers p USING (provider_id)"
# the query in every configuration a course may be indexed with, each beside its name
QUERIES = (
    " JOIN (SELECT cfg AS config, websearch_to_tsquery('simple', :q) || "
    "websearch_to_tsquery(CAST(cfg AS regconfig), :q) AS query "
    "FROM unnest(CAST(:q_configs AS text[])) AS cfg) tq ON tq.config = c.search_config"
)
CONFIGS = sorted({*TS_CONFIGS.values(), "simple"})
RANK = "round(CAST(ts_rank(c.search, tq.query) AS numeric), 9)"


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    # the reader's language (no longer used for matching: each course's own is)
    language: str = "en"
    eqf_levels: tuple[int, ...] = ()
    isced: str | None = None
    modes: tuple[str, ...] = ()
    region: str | None = None
    max_price: int | None = None
    limit: int = 20
    # the last row of the previous page: (rank or title, course id)
    after: tuple[str, uuid.UUID] | None = None

    @property
    def ranked(self) -> bool:
        return bool(self.q and self.q.strip())


# A listed course as a search result shows it: the item of GET /v1/public/courses, field for
# field (a docstring here would become its description in the OpenAPI document).
@dataclass(frozen=True)
class CourseCard:
    course_id: uuid.UUID
    version: int
    provider_id: uuid.UUID
    provider_name: str
    kind: str
    title: str
    summary: str
    language: str
    eqf_level: int
    isced_field: str
    isced_name: str
    mode: str
    region: str
    price: int
    currency: str
    next_session: datetime | None
    rank: float | None


@dataclass
class SearchResult:
    hits: list[CourseCard]
    total: int
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # where the next page starts (the last hit's rank or title, and its course id), the
    # query's ``after`` for that page; None on the last page
    after: tuple[str, uuid.UUID] | None = None


def _filters(query: SearchQuery, params: dict[str, Any]) -> dict[str, str]:
    """One SQL condition per facet ("TRUE" when the facet is not filtered)."""
    conditions = {
        "eqf_level": "TRUE",
        "isced": "TRUE",
        "mode": "TRUE",
        "region": "TRUE",
        "max_price": "TRUE",
    }
    if query.eqf_levels:
        conditions["eqf_level"] = "c.eqf_level = ANY(:eqf_levels)"
        params["eqf_levels"] = list(query.eqf_levels)
    if query.isced:
        # ISCED-F is hierarchical: '06' covers '061' and '0613' (digits only, no wildcard)
        conditions["isced"] = "c.isced_field LIKE :isced_prefix"
        params["isced_prefix"] = query.isced + "%"
    if query.modes:
        conditions["mode"] = "c.mode = ANY(:modes)"
        params["modes"] = list(query.modes)
    if query.region:
        conditions["region"] = "lower(c.region) = lower(:region)"
        params["region"] = query.region
    if query.max_price is not None:
        conditions["max_price"] = "c.price <= :max_price"
        params["max_price"] = query.max_price
    return conditions


def _base(query: SearchQuery, today: date) -> tuple[str, str, dict[str, Any]]:
    """The FROM clause, the WHERE clause and their parameters of the listed courses that
    match the query's words."""
    params: dict[str, Any] = {"today": today}
    where = ELIGIBLE
    source = COURSES
    if query.ranked:
        params["q"] = query.q
        params["q_configs"] = CONFIGS
        source += QUERIES
        where += " AND c.search @@ tq.query"
    return source, where, params


async def search(
    session: AsyncSession, query: SearchQuery, today: date, currency: str
) -> SearchResult:
    """A page of listed courses with their prices in ``currency`` (the catalogue's)."""
    source, where, params = _base(query, today)
    conditions = _filters(query, params)
    all_filters = " AND ".join(conditions.values())
    if query.ranked:
        sort_key = RANK
        order = "sort_rank DESC, course_id"
        cursor = (
            "(sort_rank < CAST(:k AS numeric) "
            "OR (sort_rank = CAST(:k AS numeric) AND course_id > :id))"
        )
    else:
        sort_key = "NULL::numeric"
        order = "title, course_id"
        cursor = "(title, course_id) > (:k, :id)"
    page_where = ""
    if query.after is not None:
        key, params["id"] = query.after
        params["k"] = Decimal(key) if query.ranked else key
        page_where = f"WHERE {cursor}"
    params["limit"] = query.limit + 1
    rows = (
        (
            await session.execute(
                text(
                    "SELECT * FROM (SELECT c.course_id, c.version, c.provider_id, "
                    "p.name AS provider_name, c.kind, c.title, c.language, c.eqf_level, "
                    "c.isced_field, c.mode, c.region, c.price, c.next_session, "
                    f"{sort_key} AS sort_rank, "
                    "(SELECT left(v.content->>'description', 240) FROM catalogue.course_versions v "
                    " WHERE v.course_id = c.course_id AND v.version = c.version) AS summary "
                    f"FROM {source} WHERE {where} AND {all_filters}) page {page_where} "
                    f"ORDER BY {order} LIMIT :limit"
                ),
                params,
            )
        )
        .mappings()
        .all()
    )
    page = rows[: query.limit]
    total, facets = await _facets(session, query, today)
    after = None
    if len(rows) > query.limit and page:
        last = page[-1]
        after = (str(last["sort_rank"]) if query.ranked else last["title"], last["course_id"])
    hits = [_card(r, currency) for r in page]
    return SearchResult(hits=hits, total=total, facets=facets, after=after)


def _card(row: Any, currency: str) -> CourseCard:
    rank: Decimal | None = row["sort_rank"]
    columns = {k: v for k, v in row.items() if k not in ("sort_rank", "summary")}
    return CourseCard(
        **columns,
        summary=row["summary"] or "",
        isced_name=isced.name_of(row["isced_field"]),
        currency=currency,
        rank=float(rank) if rank is not None else None,
    )


async def _facets(
    session: AsyncSession, query: SearchQuery, today: date
) -> tuple[int, dict[str, list[tuple[str, int]]]]:
    source, where, params = _base(query, today)
    conditions = _filters(query, params)
    flags = ", ".join(f"({cond}) AS f_{name}" for name, cond in conditions.items())

    def others(name: str) -> str:
        return " AND ".join(f"f_{n}" for n in conditions if n != name) or "TRUE"

    groups = {
        "eqf_level": "CAST(eqf_level AS text)",
        "isced": "left(isced_field, 2)",
        "mode": "mode",
        "region": "region",
    }
    parts = [
        f"SELECT '{name}' AS facet, {expr} AS value, count(*) AS n FROM base "
        f"WHERE {others(name)} GROUP BY 2"
        for name, expr in groups.items()
    ]
    parts.append(
        "SELECT 'total', '', count(*) FROM base WHERE " + " AND ".join(f"f_{n}" for n in conditions)
    )
    rows = (
        await session.execute(
            text(
                "WITH base AS MATERIALIZED (SELECT c.eqf_level, c.isced_field, c.mode, c.region, "
                f"{flags} FROM {source} WHERE {where}) " + " UNION ALL ".join(parts)
            ),
            params,
        )
    ).all()
    total = 0
    facets: dict[str, list[tuple[str, int]]] = {name: [] for name in groups}
    for facet, value, count in rows:
        if facet == "total":
            total = int(count)
        else:
            facets[facet].append((str(value), int(count)))
    for name, values in facets.items():
        if name == "eqf_level":
            values.sort(key=lambda v: int(v[0]))
        elif name in ("isced", "mode"):
            values.sort()
        else:
            values.sort(key=lambda v: (-v[1], v[0]))
    return total, facets


async def public_course(
    session: AsyncSession, course_id: uuid.UUID, today: date
) -> dict[str, Any] | None:
    """A listed course (approved, eligible provider) with its content, for the registry (its
    columns named as :class:`services.catalogue.api.public.PublicCourse` names them)."""
    row = (
        (
            await session.execute(
                text(
                    "SELECT c.course_id, c.version, c.provider_id, p.name AS provider_name, "
                    "p.country AS provider_country, p.qa_scheme AS quality_assurance, v.content "
                    "FROM catalogue.courses c JOIN catalogue.providers p USING (provider_id) "
                    "JOIN catalogue.course_versions v "
                    "ON v.course_id = c.course_id AND v.version = c.version "
                    f"WHERE c.course_id = :c AND {ELIGIBLE}"
                ),
                {"c": course_id, "today": today},
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None
