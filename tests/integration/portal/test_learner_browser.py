"""The learner's pages in a real headless Chromium at a phone's size (390 x 844) and a
desktop's (1280 x 800): the learner, signed in by a session cookie, sees their account,
confirms a proposal by clicking, refuses another (on the desktop with the keyboard only),
downloads their credential; every page passes axe-core with no serious or critical
violation, Tab reaches every action, and a screenshot of each page goes to
test-artifacts/.

The all-in-one app is served by uvicorn on 127.0.0.1 in the test's own event loop, so the
test's set-up through the APIs and the browser's requests share one app.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.portal.api.render import money
from tests.integration.support.browser import (
    ARTIFACTS,
    DESKTOP,
    FLAGS,
    PHONE,
    serious_violations,
    tab_reaches_every_action,
    unavailable,
)
from tests.integration.support.portal import portal, served

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


async def checked(page: Any, name: str, size: str) -> None:
    """axe-core finds nothing serious, Tab reaches every action, nothing is wider than the
    screen; then a screenshot."""
    violations = await serious_violations(page)
    assert not violations, f"{name}: {violations}"
    await tab_reaches_every_action(page)
    width = page.viewport_size["width"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= width, name
    await page.screenshot(path=str(ARTIFACTS / f"learner-{name}-{size}.png"), full_page=True)


async def test_the_learner_answers_proposals_and_downloads_a_credential_in_a_browser(
    db_url: str, chromium: Path
) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - environment problem
        unavailable(f"playwright is not installed: {exc}")
        raise
    ARTIFACTS.mkdir(exist_ok=True)
    async with portal(db_url) as w:
        account = await w.learner_with_credit()
        await w.accredited_provider()
        earned = await w.listed_course("Welding basics")
        # completed: the clock of payments moves past the session's end (so the proposals
        # that follow are for sessions later still)
        _, credential_id = await w.credential(account, earned)
        answers = {}
        for size, (yes, no) in {
            "phone": ("Pottery for beginners", "Spreadsheets at work"),
            "desktop": ("First aid at work", "Bookkeeping basics"),
        }.items():
            courses = [await w.listed_course(title, starts_in=90) for title in (yes, no)]
            answers[size] = [await w.proposal(account, course) for course in courses]
        cookie = await w.sign_in(account)

        async with served(w.app) as base, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=FLAGS)
            try:
                for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                    context = await browser.new_context(viewport=viewport, accept_downloads=True)
                    await context.add_cookies(
                        [{"name": n, "value": v, "url": base} for n, v in cookie.items()]
                    )
                    page = await context.new_page()
                    yes, no = answers[size]
                    await page.goto(f"{base}/me")
                    assert await page.title() == (
                        "Your learning account · Individual Learning Accounts"
                    )
                    main = page.locator("main")
                    available = (await w.balance(account))["available"]
                    assert money("EUR")(available) in await main.inner_text()
                    await checked(page, "me", size)

                    # confirm one proposal by clicking
                    card = page.locator(f"article[aria-labelledby='proposal-{yes}']")
                    # the page is at /me already: wait for the navigation the form causes
                    async with page.expect_navigation(url=f"{base}/me"):
                        await card.get_by_role("button", name="Confirm").click()
                    assert "You confirmed your enrolment" in await main.inner_text()
                    await checked(page, "me-confirmed", size)
                    await w.settled(yes, "confirmed")

                    # refuse the other: a click on the phone, the keyboard alone on the desktop
                    refuse = page.locator(f"form[action='/me/enrolments/{no}/refuse'] button")
                    if size == "phone":
                        async with page.expect_navigation(url=f"{base}/me"):
                            await refuse.click()
                    else:
                        await page.evaluate("() => document.activeElement.blur()")
                        for _ in range(200):
                            await page.keyboard.press("Tab")
                            if await refuse.evaluate("b => b === document.activeElement"):
                                break
                        else:
                            pytest.fail("Tab never reached the refuse button")
                        async with page.expect_navigation(url=f"{base}/me"):
                            await page.keyboard.press("Enter")
                    assert "You refused the proposal" in await main.inner_text()
                    assert (await w.enrolment(no))["status"] == "refused"

                    # the credential, downloaded as a file
                    async with page.expect_download() as info:
                        await page.locator(
                            f"a[href='/me/credentials/{credential_id}/download']"
                        ).click()
                    download = await info.value
                    saved = await download.path()
                    document = json.loads(await asyncio.to_thread(saved.read_text))
                    assert "proof" in document
                    verify = page.locator(f"a[href='/verify?credential={credential_id}']")
                    assert await verify.count() == 1

                    # the other pages
                    await page.get_by_role("link", name="History", exact=True).click()
                    await page.wait_for_url(f"{base}/me/history")
                    assert "Credit granted" in await main.inner_text()
                    await checked(page, "history", size)
                    await page.goto(f"{base}/me/enrolments/{yes}")
                    await checked(page, "enrolment", size)
                    r = await page.goto(f"{base}/me/enrolments/{uuid.uuid4()}")
                    assert r is not None and r.status == 404
                    await checked(page, "not-found", size)
                    await context.close()
                # the checks can fail: a field without a label is a serious violation
                page = await browser.new_page()
                await page.set_content(
                    "<html lang='en'><title>t</title><body><main><input></main></body></html>"
                )
                assert [v["id"] for v in await serious_violations(page)] == ["label"]
            finally:
                await browser.close()
