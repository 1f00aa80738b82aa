"""The registry page in a real headless Chromium at a phone's size (390 x 844).

Debian's chromium is installed by this test's setup when missing (as root only; no
browser download), driven with Python Playwright. The app is served by uvicorn on
127.0.0.1 in a background thread. With CI=true a missing browser fails the test;
elsewhere it skips. A screenshot goes to test-artifacts/registry.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ila.registry import definition
from shared.service import build_app
from tests.integration.support.browser import ARTIFACTS, FLAGS, served_in_thread, unavailable
from tests.integration.support.catalogue import course_body, provider_body
from tests.support import bearer, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[str, Any]]:
    settings = settings_for(db_url)
    app = build_app([definition("catalogue")], settings)
    with served_in_thread(app, "registry-server") as base:
        yield base, settings


async def _seed(base: str, settings: Any) -> None:
    agency = bearer(settings, "agency", agency_id="pes-fr")
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/v1/providers", json=provider_body(name="Lycée Vauban"), headers=agency)
        assert r.status_code == 201, r.text
        pid = r.json()["provider_id"]
        r = await c.post(
            f"/v1/providers/{pid}/accredit", json={"reason_code": "qa_audit_passed"}, headers=agency
        )
        assert r.status_code == 200, r.text
        provider = bearer(settings, "provider", provider_id=pid)
        courses = [
            course_body(),
            course_body(
                title="Python for data analysis",
                description="Clean, explore and chart data with Python and pandas.",
                learning_outcomes=["Load data with pandas", "Chart trends for a report"],
                eqf_level=5,
                isced_field="0613",
                mode="online",
                region="Occitanie",
                price=180_000,
            ),
            course_body(
                title="Python web development",
                description="Build a small web application with Python.",
                learning_outcomes=["Serve web pages with Python"],
                eqf_level=4,
                isced_field="0613",
                mode="blended",
                region="Occitanie",
                price=210_000,
            ),
        ]
        for body in courses:
            r = await c.post("/v1/courses", json=body, headers=provider)
            assert r.status_code == 201, r.text
            cid = r.json()["course_id"]
            assert (await c.post(f"/v1/courses/{cid}/submit", headers=provider)).status_code == 200
            r = await c.post(
                f"/v1/courses/{cid}/approve", json={"reason_code": "meets_criteria"}, headers=agency
            )
            assert r.status_code == 200, r.text


async def test_search_filter_and_open_a_course_on_a_phone(
    chromium: Path, served: tuple[str, Any]
) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - environment problem
        unavailable(f"playwright is not installed: {exc}")
        raise
    base, settings = served
    await _seed(base, settings)
    ARTIFACTS.mkdir(exist_ok=True)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{base}/registry")
            assert await page.title() == "Find training · Individual Learning Accounts"
            assert await page.locator("article.card").count() == 3
            # keyboard first: the skip link, then the search box by its label
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline == "solid"

            # search
            await page.get_by_label("Search courses", exact=True).fill("python")
            await page.keyboard.press("Enter")
            await page.wait_for_url("**/registry?q=python*")
            cards = page.locator("article.card h3")
            assert sorted(await cards.all_inner_texts()) == [
                "Python for data analysis",
                "Python web development",
            ]
            assert "2 courses found" in await page.locator("#results-heading").inner_text()

            # filter
            await page.get_by_label("EQF level").select_option("5")
            await page.get_by_role("button", name="Search").click()
            await page.wait_for_url("**eqf_level=5*")
            assert await cards.all_inner_texts() == ["Python for data analysis"]
            # nothing wider than the phone
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            await page.screenshot(path=str(ARTIFACTS / "registry.png"), full_page=True)

            # open the course
            await page.get_by_role("link", name="Python for data analysis").click()
            await page.wait_for_url("**/registry/courses/*")
            assert await page.locator("h1").inner_text() == "Python for data analysis"
            body = await page.locator("main").inner_text()
            assert "Load data with pandas" in body
            assert "€1,800.00" in body
            assert "Certificate in basic arc welding" in body  # the micro-credential title
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            await page.screenshot(path=str(ARTIFACTS / "registry-course.png"), full_page=True)
        finally:
            await browser.close()
