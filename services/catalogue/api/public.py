"""The public registry API (no authentication): eligible courses only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
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


class CourseCard(BaseModel):
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


class SearchReply(BaseModel):
    items: list[CourseCard]
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


def reply(query: store.SearchQuery, result: store.SearchResult, currency: str) -> SearchReply:
    items = [
        CourseCard(
            **{k: v for k, v in vars(h).items() if k != "sort_key"},
            isced_name=isced.name_of(h.isced_field),
            currency=currency,
        )
        for h in result.hits
    ]
    last = result.hits[-1] if result.has_more and result.hits else None
    nxt = cursor.encode(query.ranked, last.sort_key, last.course_id) if last else None
    facets = {
        name: [FacetValue(value=v, label=facet_labels(name, v), count=n) for v, n in values]
        for name, values in result.facets.items()
    }
    return SearchReply(items=items, next=nxt, total=result.total, facets=Facets(**facets))


@router.get("/courses", response_model=SearchReply)
async def search_courses(
    rt: Runtime,
    parts: Components,
    q: Annotated[str | None, Query(max_length=200, description="full-text search")] = None,
    lang: Annotated[str, Query(pattern="^[a-z]{2}$", description="language of q")] = "en",
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
    (title first, then learning outcomes, then description), otherwise by title. Facet
    counts cover the whole result, each facet counted without its own filter."""
    query = build_query(q, lang, eqf_level, isced, mode, region, max_price, limit, after)
    async with rt.sessions() as session:
        result = await store.search(session, query, parts.clock.now().date())
    return reply(query, result, parts.config.currency)


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
    async with rt.sessions() as session:
        row = await store.public_course(session, course_id, parts.clock.now().date())
    if row is None:
        raise NotFound(f"no listed course {course_id}")
    return PublicCourse(
        course_id=row["course_id"],
        version=row["version"],
        provider_id=row["provider_id"],
        provider_name=row["provider_name"],
        provider_country=row["provider_country"],
        quality_assurance=row["qa_scheme"],
        currency=parts.config.currency,
        content=row["content"],
        micro_credential=descriptor_elements(
            row["content"], learner=None, issued_at=None, grade=None
        ),
    )


@router.get("/courses/{course_id}", response_model=PublicCourse)
async def public_course(course_id: uuid.UUID, rt: Runtime, parts: Components) -> PublicCourse:
    """One listed course with its micro-credential description."""
    return await load_public_course(rt, parts, course_id)
