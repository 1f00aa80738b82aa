"""The public registry API (no authentication): eligible courses only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.catalogue.deps import CatalogueComponents, Components, Runtime
from services.catalogue.domain import cursor, isced
from services.catalogue.domain.credentials.document import descriptor_elements
from services.catalogue.store import search as store
from shared.problems import NotFound
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/public", tags=["public registry"])
Mode = Literal["in_person", "online", "blended"]
EqfLevel = Annotated[int, Field(ge=1, le=8)]


class FacetValue(BaseModel):
    value: str
    label: str
    count: int


class Facets(BaseModel):
    eqf_level: list[FacetValue]
    isced: list[FacetValue]
    mode: list[FacetValue]
    region: list[FacetValue]


class SearchReply(BaseModel):
    items: list[store.CourseCard]
    next: str | None
    total: int
    facets: Facets


MODE_LABELS = {"in_person": "In person", "online": "Online", "blended": "Blended"}


def facet_labels(name: str, value: str) -> str:
    if name == "isced":
        return isced.name_of(value)
    if name == "mode":
        return MODE_LABELS.get(value, value)
    if name == "eqf_level":
        return f"EQF {value}"
    return value


def reply(query: store.SearchQuery, result: store.SearchResult) -> SearchReply:
    nxt = cursor.encode(query.ranked, *result.after) if result.after else None
    facets = {
        name: [FacetValue(value=v, label=facet_labels(name, v), count=n) for v, n in values]
        for name, values in result.facets.items()
    }
    return SearchReply(items=result.hits, next=nxt, total=result.total, facets=Facets(**facets))


@router.get("/courses", response_model=SearchReply)
async def search_courses(
    rt: Runtime,
    parts: Components,
    q: Annotated[str | None, Query(max_length=200, description="full-text search")] = None,
    lang: Annotated[
        str,
        Query(
            pattern="^[a-z]{2}$",
            deprecated=True,
            description="the reader's language; not used for matching: q is parsed in each "
            "course's own language",
        ),
    ] = "en",
    eqf_level: Annotated[list[EqfLevel] | None, Query(description="EQF level(s)")] = None,
    isced: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,4}$", description="ISCED-F code or its prefix")
    ] = None,
    mode: Annotated[list[Mode] | None, Query()] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    max_price: Annotated[int | None, Query(ge=0, description="minor units")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=500)] = None,
) -> SearchReply:
    """Approved courses of eligible providers, ranked by relevance when ``q`` is given
    (title first, then learning outcomes, then description), otherwise by title. ``q``
    matches words as written and, stemmed, in each course's language. Facet
    counts cover the whole result, each facet counted without its own filter."""
    query = build_query(q, lang, eqf_level, isced, mode, region, max_price, limit, after)
    async with rt.reads() as session:
        result = await store.search(session, query, parts.clock.now().date(), parts.config.currency)
    return reply(query, result)


def build_query(
    q: str | None,
    lang: str,
    eqf_level: list[int] | None,
    isced_prefix: str | None,
    mode: Sequence[str] | None,
    region: str | None,
    max_price: int | None,
    limit: int,
    after: str | None,
) -> store.SearchQuery:
    q = (q or "").strip() or None
    ranked = q is not None
    return store.SearchQuery(
        q=q,
        language=lang,
        eqf_levels=tuple(sorted(set(eqf_level or ()))),
        isced=isced_prefix,
        modes=tuple(sorted(set(mode or ()))),
        region=(region or "").strip() or None,
        max_price=max_price,
        limit=limit,
        after=cursor.decode(after, ranked) if after else None,
    )


class PublicCourse(BaseModel):
    course_id: uuid.UUID
    version: int
    provider_id: uuid.UUID
    provider_name: str
    provider_country: str
    quality_assurance: str
    currency: str
    content: dict[str, Any]
    micro_credential: dict[str, Any]


async def load_public_course(
    rt: ServiceRuntime, parts: CatalogueComponents, course_id: uuid.UUID
) -> PublicCourse:
    """A listed course (approved, of an eligible provider) as the public sees it."""
    async with rt.reads() as session:
        row = await store.public_course(session, course_id, parts.clock.now().date())
    if row is None:
        raise NotFound(f"no listed course {course_id}")
    return PublicCourse(
        **row,
        currency=parts.config.currency,
        micro_credential=descriptor_elements(
            row["content"], learner=None, issued_at=None, grade=None
        ),
    )


@router.get("/courses/{course_id}", response_model=PublicCourse)
async def public_course(course_id: uuid.UUID, rt: Runtime, parts: Components) -> PublicCourse:
    """One listed course with its micro-credential description."""
    return await load_public_course(rt, parts, course_id)
