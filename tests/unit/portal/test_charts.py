"""The dashboard's charts: well-formed SVG that names and describes itself, with every
figure as text, and bars as long (or columns as tall) as their values say."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from services.portal.charts import Bar, bar_chart, column_chart
from services.portal.figures import csv_rows, participation, share

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def bars_of(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f"{SVG}rect")


def texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_a_bar_chart_is_an_image_named_and_described_with_every_figure() -> None:
    bars = [Bar("Île-de-France", 40.0, "40.0%"), Bar("Bretagne & <Nord>", 10.0, "10.0%")]
    svg = parse(bar_chart("Share who trained", bars, summary="Trained in 2025."))
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.text == "Share who trained"
    assert desc is not None and desc.text is not None
    assert "Île-de-France: 40.0%" in desc.text and "Bretagne & <Nord>: 10.0%" in desc.text
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    # each bar has its label and its value as text, not only a colour
    shown = texts(svg)
    assert {"Île-de-France", "Bretagne & <Nord>", "40.0%", "10.0%"} <= set(shown)


def test_bars_are_proportional_to_their_values() -> None:
    svg = parse(bar_chart("t", [Bar("a", 30, "30"), Bar("b", 15, "15"), Bar("c", 0, "0")]))
    widths = [float(r.get("width") or "nan") for r in bars_of(svg)]
    assert widths[0] > 0 and widths[1] == pytest.approx(widths[0] / 2) and widths[2] == 0
    scaled = parse(bar_chart("t", [Bar("a", 30, "30%")], maximum=100.0))
    [rect] = bars_of(scaled)
    assert float(rect.get("width") or 0) == pytest.approx(widths[0] * 0.3)


def test_the_target_is_a_labelled_line_at_its_value() -> None:
    svg = parse(
        bar_chart("t", [Bar("a", 60, "60%")], target=60, target_label="target 60%", maximum=100.0)
    )
    [line] = svg.findall(f"{SVG}line")
    [rect] = bars_of(svg)
    assert float(line.get("x1") or 0) == pytest.approx(
        float(rect.get("x") or 0) + float(rect.get("width") or 0)
    )
    assert "target 60%" in texts(svg)


def test_columns_are_as_tall_as_their_values_with_month_labels() -> None:
    months = [
        Bar(f"{m:02d}", float(v), str(v)) for m, v in zip(range(1, 4), (4, 2, 0), strict=True)
    ]
    svg = parse(column_chart("Enrolments", months))
    heights = [float(r.get("height") or "nan") for r in bars_of(svg)]
    assert heights[0] > 0 and heights[1] == pytest.approx(heights[0] / 2) and heights[2] == 0
    assert {"01", "02", "03", "4", "2", "0"} <= set(texts(svg))
    assert svg.get("role") == "img"


def test_an_empty_chart_is_still_well_formed_and_says_so() -> None:
    svg = parse(bar_chart("Nothing", []))
    assert "no figures" in texts(svg)
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and desc.text == "no figures"


def test_shares_are_rounded_to_one_decimal_from_integer_counts() -> None:
    assert share(1, 3) == 33.3 and share(2, 3) == 66.7 and share(0, 5) == 0.0
    assert share(3, 0) is None


def test_the_participation_table_holds_every_dimension_and_exports_empty_shares_blank() -> None:
    view = participation(
        {
            "target_percent": 60,
            "holders": 0,
            "trained": 0,
            "by_region": [],
            "by_age_band": [],
            "by_need_tier": [],
            "by_isced_field": [{"key": "06", "trained": 0}],
        }
    )
    assert view.rows[0] == ("all", "all", 0, 0, None, 60)
    header, *rows = csv_rows(view)
    assert header[:2] == ("dimension", "group") and rows[0][4] == ""
