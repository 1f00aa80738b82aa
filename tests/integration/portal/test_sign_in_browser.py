"""Signing in as a person does, in Debian's Chromium through Playwright, at a phone's size
(390 x 844) and a desktop's: the page asked for sends the browser to the real OIDC test
provider, whose form takes the person's subject and national id, and back to the page,
signed in; then signing out. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ila.oidc_provider import OidcProvider
from ila.registry import everything
from shared.service import build_app
from shared.settings import Settings
from tests.integration.support.accounts import AGENCY_ID, account_body, new_national_id
from tests.integration.support.browser import ARTIFACTS, FLAGS, served_in_thread, unavailable
from tests.support import bearer, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
def served(db_url: str, oidc_provider: OidcProvider) -> Iterator[tuple[str, Settings]]:
    settings = settings_for(db_url, oidc_issuer=oidc_provider.issuer)
    app = build_app(everything(), settings, run_jobs=False)
    with served_in_thread(app, "portal-server") as base:
        yield base, settings


@pytest.mark.parametrize("size", sorted(SIZES))
async def test_a_person_signs_in_through_the_providers_form_and_out_again(
    chromium: Path,
    served: tuple[str, Settings],
    size: str,
) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - environment problem
        unavailable(f"playwright is not installed: {exc}")
        raise
    base, settings = served
    national_id = new_national_id()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(
            "/v1/accounts",
            json=account_body(national_id=national_id),
            headers=bearer(settings, "agency", agency_id=AGENCY_ID),
        )
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]
    ARTIFACTS.mkdir(exist_ok=True)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
            page = await context.new_page()

            # the provider's page asks for web fonts; this machine reaches no other site
            async def offline(route: Any) -> None:
                await route.abort()

            await page.route("https://fonts.googleapis.com/**", offline)
            await page.goto(f"{base}/me")
            # at the provider: its own login form
            await page.wait_for_selector("input[name=username]")
            assert page.url.startswith(f"{settings.oidc_issuer}/authorize?")
            assert "code_challenge_method=S256" in page.url
            await page.fill("input[name=username]", "camille")
            await page.fill("textarea[name=claims]", json.dumps({"national_id": national_id}))
            await page.screenshot(path=str(ARTIFACTS / f"sign-in-provider-{size}.png"))
            await page.click("input[type=submit]")

            await page.wait_for_url(f"{base}/me")
            assert await page.locator("h1").inner_text() == "Your learning account"
            assert await page.locator("#account-id").inner_text() == account_id
            cookies = {c["name"]: c for c in await context.cookies(base)}
            session = cookies["ila_session"]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            assert "ila_sign_in" not in cookies
            assert await page.evaluate("document.cookie") == ""  # no script reads it
            assert (
                await page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
            )
            await page.screenshot(path=str(ARTIFACTS / f"sign-in-signed-in-{size}.png"))

            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{base}/signed-out")
            assert await page.locator("h1").inner_text() == "You have signed out"
            assert "ila_session" not in {c["name"] for c in await context.cookies(base)}
            await page.screenshot(path=str(ARTIFACTS / f"sign-in-signed-out-{size}.png"))
        finally:
            await browser.close()
