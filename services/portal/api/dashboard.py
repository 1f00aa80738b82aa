"""The monitoring dashboard: progress to the 60% target and the money by funder, with charts
drawn on the server, and every view exported as CSV and JSON for the European Semester
reporting.

Who: ``admin`` and ``auditor`` (the country) and ``agency`` (the accounts it manages). These
are staff, who call with ``Authorization: Bearer <token>`` as they call the API (a sign-in
for staff is not part of the portal yet): the page reads the token from that header and
asks each service for its own statistics with it (``/v1/accounts/statistics``,
``/v1/ledger/statistics``, ``/v1/payments/statistics``, ``/v1/catalogue/statistics``), so
each service applies its own roles and scope and no figure is computed from another
service's tables.

- ``GET /dashboard?year=&region=``: the page (a GET form filters by year, and by region for
  national roles); with ``Accept: text/csv`` the view ``?view=`` as CSV.
- ``GET /dashboard/export.csv?view=participation|money|activity|holds|guidance``: one view
  as CSV.
- ``GET /dashboard/export.json``: every view (or ``?view=``), with the filters and scope.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.portal import charts, figures
from services.portal.api import render
from services.portal.client import ApiError, ServiceApi, http_client
from services.portal.deps import Components
from services.portal.figures import View, ViewName
from shared import i18n
from shared.auth import Principal, require
from shared.i18n import Localized
from shared.problems import Problem

router = APIRouter(tags=["portal"])

Staff = Annotated[Principal, Depends(require("admin", "auditor", "agency"))]
Year = Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")]
Region = Annotated[str | None, Query(max_length=100, description="national roles only")]
ViewParam = Annotated[ViewName, Query(description="which table")]
NATIONAL = ("admin", "auditor")
ONE_DECIMAL = "#,##0.0"


class ServiceRefused(Problem):
    """A service refused a statistics call: the dashboard answers as it did."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error.problem.get("detail") or "a service refused the request"))
        self.status = error.status if 400 <= error.status < 500 else 502
        self.title = str(error.problem.get("title") or "Refused")
        self.slug = "service-refused"


def _token(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


async def statistics(
    request: Request, year: int, region: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The four services' statistics, asked with the caller's own token."""
    try:
        async with http_client(request) as http:
            api = ServiceApi(http, _token(request))
            accounts, ledger, payments, catalogue = await asyncio.gather(
                api.get(
                    "/v1/accounts/statistics",
                    params={"year": year, **({"region": region} if region else {})},
                ),
                api.get("/v1/ledger/statistics", params={"year": year}),
                api.get("/v1/payments/statistics", params={"year": year}),
                api.get("/v1/catalogue/statistics", params={"year": year}),
            )
    except ApiError as error:
        raise ServiceRefused(error) from error
    return accounts, ledger, payments, catalogue


async def _views(
    request: Request, parts: Components, year: int | None, region: str | None
) -> tuple[int, str | None, dict[str, Any], dict[ViewName, View]]:
    year = year or parts.clock.now().year
    region = (region or "").strip() or None
    accounts, ledger, payments, catalogue = await statistics(request, year, region)
    meta = {
        "year": year,
        "region": region,
        "agency_id": accounts["agency_id"],
        "currency": ledger["currency"],
        "generated_at": parts.clock.now().isoformat(),
        "regions": accounts["regions"],
        "target_percent": accounts["target_percent"],
    }
    return year, region, meta, figures.views(accounts, ledger, payments, catalogue)


def csv_response(view: View, year: int) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(figures.csv_rows(view))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ila-{view.name}-{year}.csv"'},
    )


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    parts: Components,
    principal: Staff,
    year: Year = None,
    region: Region = None,
    view: ViewParam = "participation",
) -> Response:
    """The monitoring page (``Accept: text/csv``: the view ``view`` as CSV)."""
    year, region, meta, tables = await _views(request, parts, year, region)
    if "text/csv" in request.headers.get("accept", ""):
        return csv_response(tables[view], year)
    loc = i18n.localized(i18n.choose(request).locale)
    return render.page(
        request,
        "dashboard.html",
        meta=meta,
        views=tables,
        charts=draw(tables, meta, loc),
        national=principal.role in NATIONAL,
        isced_name=figures.isced_name,
        currency=meta["currency"],
    )


@router.get("/dashboard/export.csv", responses={200: {"content": {"text/csv": {}}}})
async def export_csv(
    request: Request,
    parts: Components,
    principal: Staff,
    view: ViewParam,
    year: Year = None,
    region: Region = None,
) -> Response:
    """One view as CSV (money in minor units, shares in percent)."""
    year, _, _, tables = await _views(request, parts, year, region)
    return csv_response(tables[view], year)


@router.get("/dashboard/export.json")
async def export_json(
    request: Request,
    parts: Components,
    principal: Staff,
    year: Year = None,
    region: Region = None,
    view: Annotated[ViewName | None, Query(description="default: every view")] = None,
) -> JSONResponse:
    """Every view (or ``view``) as records, with the filters and the scope they cover."""
    year, region, meta, tables = await _views(request, parts, year, region)
    chosen = [view] if view else list(figures.VIEWS)
    body = {
        **{k: meta[k] for k in ("year", "region", "agency_id", "currency", "generated_at")},
        "target_percent": meta["target_percent"],
        "views": {
            name: {
                "title": tables[name].title,
                "columns": list(tables[name].columns),
                "rows": tables[name].records(),
            }
            for name in chosen
        },
    }
    return JSONResponse(body)


def draw(tables: dict[ViewName, View], meta: dict[str, Any], loc: Localized) -> dict[str, Any]:
    """The charts of each view, from the same rows as the tables, in ``loc``'s language."""
    _ = loc.gettext
    target = float(meta["target_percent"])
    year = meta["year"]
    money = render.money(meta["currency"], loc)
    dimensions = {
        "region": _("By region"),
        "age_band": _("By age band"),
        "need_tier": _("By need tier"),
        "isced_field": _("By ISCED-F field (of all holders)"),
    }
    shares: dict[str, list[charts.Bar]] = {d: [] for d in figures.DIMENSIONS}
    for dimension, group, _h, _t, pct, _target in tables["participation"].rows[1:]:
        label = f"{group} {_(figures.isced_name(group))}" if dimension == "isced_field" else group
        shown = _("no holders") if pct is None else f"{loc.number(pct, ONE_DECIMAL)}%"
        shares[dimension].append(charts.Bar(label, pct or 0.0, shown))
    target_text = loc.number(round(target))
    participation = {
        d: charts.bar_chart(
            _("Share who trained in %(year)s: %(dimension)s")
            % {"year": year, "dimension": dimensions[d]},
            bars,
            summary=_(
                "Share of account holders who trained in %(year)s, against the target of "
                "%(target)s%%."
            )
            % {"year": year, "target": target_text},
            target=target,
            target_label=_("target %(target)s%%") % {"target": target_text},
            maximum=100.0,
            empty=_("no figures"),
        )
        for d, bars in shares.items()
    }
    columns = tables["money"].columns
    figure_names = {"granted": _("granted"), "spent": _("spent"), "expired": _("expired")}
    credit = [
        charts.Bar(
            f"{row[1]}: {shown}",
            float(row[columns.index(name)]),
            money(row[columns.index(name)]),
        )
        for row in tables["money"].rows
        for name, shown in figure_names.items()
    ]
    months = tables["activity"].rows
    guided = tables["guidance"].rows
    by_year = {"year": year}
    return {
        "participation": participation,
        "money": charts.bar_chart(
            _("Credit granted, spent and expired by funder in %(year)s") % by_year,
            credit,
            summary=_("Amounts by funder."),
            empty=_("no figures"),
        ),
        "enrolments": charts.column_chart(
            _("Enrolments by month in %(year)s") % by_year,
            [charts.Bar(m[0][5:], float(m[1]), loc.number(m[1])) for m in months],
            summary=_("Enrolments the learners consented to, by month."),
            empty=_("no figures"),
        ),
        "completions": charts.column_chart(
            _("Completions by month in %(year)s") % by_year,
            [charts.Bar(m[0][5:], float(m[2]), loc.number(m[2])) for m in months],
            summary=_("Completion claims captured, by month."),
            empty=_("no figures"),
        ),
        "paid": charts.column_chart(
            _("Paid to providers by month in %(year)s") % by_year,
            [charts.Bar(m[0][5:], float(m[4]), money(m[4])) for m in months],
            summary=_("What payouts paid for claims, by month."),
            empty=_("no figures"),
        ),
        "guidance_plans": charts.column_chart(
            _("Guidance plans by month in %(year)s") % by_year,
            [charts.Bar(m[0][5:], float(m[1]), loc.number(m[1])) for m in guided],
            summary=_("Outcomes of guidance sessions recorded, by month."),
            empty=_("no figures"),
        ),
        "validations": charts.column_chart(
            _("Validations of prior learning by month in %(year)s") % by_year,
            [charts.Bar(m[0][5:], float(m[2]), loc.number(m[2])) for m in guided],
            summary=_("Validations of prior learning recorded, by month."),
            empty=_("no figures"),
        ),
    }
