"""The public registry as server-rendered HTML for a phone: a search form with filters,
result cards and a course page. Plain links and GET forms, so it works without
JavaScript; the same search as ``GET /v1/public/courses``.

The page is forgiving where the JSON API is strict: a filter it cannot read (an empty
select, a letter in the price box, a stale cursor) is ignored rather than refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.catalogue.api.labels import MODES
from services.catalogue.api.pages import PAGES
from services.catalogue.api.public import (
    MODE_LABELS,
    build_query,
    load_public_course,
)
from services.catalogue.deps import Components, Runtime
from services.catalogue.domain import cursor
from services.catalogue.domain import isced as isced_fields
from services.catalogue.store import search as store
from shared.problems import NotFound

router = APIRouter(prefix="/registry", tags=["public registry"])
PAGE_SIZE = 10
CACHE = "public, max-age=60"
Text = Annotated[str | None, Query(max_length=2000)]


def _int(value: str | None, low: int, high: int) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if low <= number <= high else None


@router.get("", response_class=HTMLResponse)
async def registry_page(
    request: Request,
    rt: Runtime,
    parts: Components,
    q: Text = None,
    eqf_level: Text = None,
    isced: Text = None,
    mode: Text = None,
    region: Text = None,
    max_eur: Annotated[str | None, Query(description="maximum price in whole units")] = None,
    after: Text = None,
) -> HTMLResponse:
    """Search form, filters and result cards."""
    # every parameter is plain text: what cannot be read is ignored, never refused
    p = {
        "q": q, "eqf_level": eqf_level, "isced": isced, "mode": mode, "region": region,
        "max_eur": max_eur, "after": after,
    }  # fmt: skip
    form = {
        "q": (p.get("q") or "")[:200],
        "eqf_level": str(_int(p.get("eqf_level"), 1, 8) or ""),
        "isced": p["isced"] if isced_fields.lookup(p["isced"] or "") else "",
        "mode": p["mode"] if p["mode"] in MODE_LABELS else "",
        "region": (p.get("region") or "")[:200],
    }
    max_units = _int(p["max_eur"], 0, 10**8)
    form["max_eur"] = "" if max_units is None else str(max_units)

    def query_for(cursor: str | None) -> store.SearchQuery:
        return build_query(
            form["q"] or None,
            "en",
            [int(form["eqf_level"])] if form["eqf_level"] else None,
            form["isced"] or None,
            [form["mode"]] if form["mode"] else None,
            form["region"] or None,
            max_units * 100 if max_units is not None else None,
            PAGE_SIZE,
            cursor,
        )

    try:
        query = query_for(p.get("after"))
    except cursor.InvalidCursor:
        query = query_for(None)  # a stale or foreign cursor: start again
    currency = parts.config.currency
    async with rt.reads() as session:
        result = await store.search(session, query, parts.clock.now().date(), currency)
    next_url = None
    if result.after:
        params = {k: v for k, v in form.items() if v}
        params["after"] = cursor.encode(query.ranked, *result.after)
        next_url = "/registry?" + urlencode(params)
    return PAGES.render(
        request,
        "search.html",
        headers={"Cache-Control": CACHE},
        form=form,
        hits=result.hits,
        total=result.total,
        facets=result.facets,
        counts={name: dict(values) for name, values in result.facets.items()},
        fields=isced_fields.broad_fields(),
        modes=list(MODES.items()),
        next_url=next_url,
        currency=currency,
    )


@router.get("/courses/{course_id}", response_class=HTMLResponse)
async def course_page(
    request: Request, course_id: str, rt: Runtime, parts: Components
) -> HTMLResponse:
    """One listed course: outcomes, key facts, sessions and the micro-credential."""
    currency = parts.config.currency
    try:
        course = await load_public_course(rt, parts, uuid.UUID(course_id))
    except (ValueError, NotFound):
        return PAGES.render(request, "not_found.html", status_code=404, currency=currency)
    sessions = [
        {
            "start": datetime.fromisoformat(s["start"]),
            "end": datetime.fromisoformat(s["end"]),
            "seats": s["seats"],
        }
        for s in course.content["sessions"]
    ]
    return PAGES.render(
        request,
        "course.html",
        headers={"Cache-Control": CACHE},
        course=course,
        c=course.content,
        mc=course.micro_credential,
        sessions=sessions,
        currency=currency,
    )
