"""A learner's journey in Debian's Chromium through Playwright, at a phone's size (390 x 844)
and a desktop's (1280 x 800): they sign in through the real OIDC test provider's form, see
two proposals on their account, confirm one (and, after the saga, the page shows the
enrolment confirmed), refuse the other, download their credential, check it on the public
verification page by uploading the file and by pasting its text, then read their account
in French and in German; and the ministry's dashboard, opened with a staff token.

Every page of ours visited passes axe-core (in the same Chromium) with no serious or
critical violation, is no wider than the screen, and gets a screenshot in test-artifacts/
(``journey-<step>-<size>.png``); on /me, /verify and the dashboard Tab alone reaches every
action.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ila.oidc_provider import OidcProvider
from tests.integration.support.browser import (
    ARTIFACTS,
    DESKTOP,
    FLAGS,
    PHONE,
    serious_violations,
    tab_reaches_every_action,
    unavailable,
)
from tests.integration.support.portal import Portal, portal, served

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

SIZES = {"phone": PHONE, "desktop": DESKTOP}


async def checked(page: Any, step: str, size: str, *, keyboard: bool = False) -> None:
    """axe-core finds nothing serious, nothing is wider than the screen, and (``keyboard``)
    Tab reaches every action; then a screenshot."""
    violations = await serious_violations(page)
    assert not violations, f"{step} ({size}): {violations}"
    width = page.viewport_size["width"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= width, step
    if keyboard:
        await tab_reaches_every_action(page)
    await page.screenshot(path=str(ARTIFACTS / f"journey-{step}-{size}.png"), full_page=True)


async def sign_in(page: Any, base: str, settings_issuer: str, national_id: str, size: str) -> None:
    """From /me to the provider's own login form, and back signed in."""

    # the provider's page asks for web fonts; this machine reaches no other site
    async def offline(route: Any) -> None:
        await route.abort()

    await page.route("https://fonts.googleapis.com/**", offline)
    await page.goto(f"{base}/me")
    await page.wait_for_selector("input[name=username]")
    assert page.url.startswith(f"{settings_issuer}/authorize?")
    await page.fill("input[name=username]", f"learner-{size}")
    await page.fill("textarea[name=claims]", json.dumps({"national_id": national_id}))
    await page.screenshot(path=str(ARTIFACTS / f"journey-provider-{size}.png"))
    await page.click("input[type=submit]")
    await page.wait_for_url(f"{base}/me")


async def verdict(page: Any) -> str | None:
    found = page.locator("[data-verdict]")
    await found.wait_for()
    value: str | None = await found.get_attribute("data-verdict")
    return value


async def journey(
    w: Portal, page: Any, base: str, issuer: str, national_id: str, size: str, ids: dict[str, str]
) -> None:
    yes, no, credential_id = ids["yes"], ids["no"], ids["credential"]
    main = page.locator("main")

    # signed in through the provider, on the account's page with two proposals
    await sign_in(page, base, issuer, national_id, size)
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("h1").inner_text() == "Your learning account"
    for enrolment_id in (yes, no):
        assert await page.locator(f"article[aria-labelledby='proposal-{enrolment_id}']").count()
    await checked(page, "me", size, keyboard=True)

    # confirm one: the page says so, and once the saga has reserved the credit the
    # enrolment shows as confirmed
    card = page.locator(f"article[aria-labelledby='proposal-{yes}']")
    await card.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(f"{base}/me")
    assert "You confirmed your enrolment" in await main.inner_text()
    await w.settled(yes, "confirmed")
    await page.goto(f"{base}/me")
    enrolled = page.locator(f"article[aria-labelledby='enrolment-{yes}']")
    assert await enrolled.locator(".status").inner_text() == "Confirmed"
    assert await page.locator(f"article[aria-labelledby='proposal-{yes}']").count() == 0
    await checked(page, "me-confirmed", size)

    # refuse the other
    await page.locator(f"form[action='/me/enrolments/{no}/refuse'] button").click()
    await page.wait_for_url(f"{base}/me")
    assert "You refused the proposal" in await main.inner_text()
    assert (await w.enrolment(no))["status"] == "refused"
    assert await page.locator(f"article[aria-labelledby='proposal-{no}']").count() == 0
    await checked(page, "me-refused", size)

    # the credential, downloaded as a file
    async with page.expect_download() as info:
        await page.locator(f"a[href='/me/credentials/{credential_id}/download']").click()
    download = await info.value
    saved = Path(str(await download.path()))
    text = await asyncio.to_thread(saved.read_text)
    assert "proof" in json.loads(text)

    # its link on the account opens the public check of the credential as we hold it
    await page.locator(f"a[href='/verify?credential={credential_id}']").click()
    await page.wait_for_url(re.compile(r".*/verify\?credential="))
    assert await verdict(page) == "valid"
    await checked(page, "verify-linked", size)

    # an employer uploads the file ...
    await page.goto(f"{base}/verify")
    await checked(page, "verify", size, keyboard=True)
    await page.set_input_files("#file", str(saved))
    await page.locator("main form button[type=submit]").click()
    assert await verdict(page) == "valid"
    assert "valid" in (await page.locator("[data-verdict]").inner_text()).lower()
    await checked(page, "verify-uploaded", size)
    # ... or pastes its text
    await page.goto(f"{base}/verify")
    await page.fill("#credential", text)
    await page.locator("main form button[type=submit]").click()
    assert await verdict(page) == "valid"
    await checked(page, "verify-pasted", size)

    # the language, switched from the header's links (and kept for the next pages)
    await page.goto(f"{base}/me")
    await page.locator("nav.langs a[hreflang=fr]").click()
    await page.wait_for_url(re.compile(r".*/me\?lang=fr$"))
    assert await page.locator("html").get_attribute("lang") == "fr"
    assert await page.locator("h1").inner_text() == "Votre compte de formation"
    assert "Confirmée" in await main.inner_text()
    assert await page.title() == "Votre compte de formation · Comptes individuels de formation"
    await checked(page, "me-fr", size)
    await page.locator("nav.langs a[hreflang=de]").click()
    await page.wait_for_url(re.compile(r".*/me\?lang=de$"))
    assert await page.locator("html").get_attribute("lang") == "de"
    assert await page.locator("h1").inner_text() == "Ihr Lernkonto"
    assert "Bestätigt" in await main.inner_text()
    await checked(page, "me-de", size)
    await page.get_by_role("link", name="Verlauf", exact=True).click()
    await page.wait_for_url(f"{base}/me/history")
    assert await page.locator("h1").inner_text() == "Verlauf Ihres Kontos"
    await checked(page, "history-de", size)
    await page.goto(f"{base}/verify")  # the registry's pages read the same choice
    assert await page.locator("html").get_attribute("lang") == "de"
    assert await page.locator("h1").inner_text() == "Nachweis prüfen"

    # signing out, in German
    await page.goto(f"{base}/me")
    await page.get_by_role("button", name="Abmelden").click()
    await page.wait_for_url(f"{base}/signed-out")
    assert await page.locator("h1").inner_text() == "Sie haben sich abgemeldet"
    await checked(page, "signed-out", size)
    await page.goto(f"{base}/signed-out?lang=en")
    assert await page.locator("h1").inner_text() == "You have signed out"


async def test_a_learners_journey_in_a_browser_at_phone_and_desktop_sizes(
    db_url: str, chromium: Path, oidc_provider: OidcProvider
) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - environment problem
        unavailable(f"playwright is not installed: {exc}")
        raise
    ARTIFACTS.mkdir(exist_ok=True)
    async with portal(db_url, oidc_issuer=oidc_provider.issuer) as w:
        national_id = "FR" + "7" * 12
        account = await w.account(credit=200_000, national_id=national_id)
        await w.accredited_provider()
        earned = await w.listed_course("Welding basics")
        # completed: the clock of payments moves past the session's end (so the proposals
        # that follow are for sessions later still)
        _, credential_id = await w.credential(account, earned)
        ids: dict[str, dict[str, str]] = {}
        for size, titles in {
            "phone": ("Pottery for beginners", "Spreadsheets at work"),
            "desktop": ("First aid at work", "Bookkeeping basics"),
        }.items():
            courses = [await w.listed_course(title, starts_in=90) for title in titles]
            yes, no = [await w.proposal(account, course) for course in courses]
            ids[size] = {"yes": yes, "no": no, "credential": credential_id}

        async with served(w.app) as base, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=FLAGS)
            try:
                for size, viewport in SIZES.items():
                    context = await browser.new_context(
                        viewport=viewport, accept_downloads=True, locale="en-GB"
                    )
                    page = await context.new_page()
                    await journey(w, page, base, oidc_provider.issuer, national_id, size, ids[size])
                    await context.close()

                    # the ministry's view: staff call with a Bearer token, as they call the API
                    staff = await browser.new_context(
                        viewport=viewport, locale="en-GB", extra_http_headers=w.admin
                    )
                    page = await staff.new_page()
                    r = await page.goto(f"{base}/dashboard")
                    assert r is not None and r.status == 200
                    assert await page.locator("h1").inner_text() == "Monitoring dashboard"
                    assert await page.locator("svg[role=img]").count() >= 8
                    await checked(page, "dashboard", size, keyboard=True)
                    await page.locator("nav.langs a[hreflang=fr]").click()
                    await page.wait_for_url(re.compile(r".*/dashboard\?lang=fr$"))
                    assert await page.locator("h1").inner_text() == "Tableau de bord de suivi"
                    await checked(page, "dashboard-fr", size)
                    await staff.close()
            finally:
                await browser.close()
