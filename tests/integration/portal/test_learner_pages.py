"""The learner's pages over the real services (all in one process, real PostgreSQL): the
account at a glance, consent given and refused through forms, a claim contested, a
credential downloaded, and every refusal a page with a 4xx status that changes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from services.portal.api.render import day
from tests.integration.support.portal import Portal, csrf_of, page, portal

pytestmark = pytest.mark.postgres


async def post_form(w: Portal, cookies: dict[str, str], path: str, data: dict[str, str]) -> Any:
    w.c.cookies.clear()
    return await w.c.post(path, data=data, cookies=cookies)


async def test_the_account_page_shows_credit_lots_and_proposals_and_the_learner_answers(
    db_url: str,
) -> None:
    async with portal(db_url) as w:
        account = await w.learner_with_credit()
        await w.accredited_provider()
        welding = await w.listed_course("Welding basics", price=60_000)
        pottery = await w.listed_course("Pottery for beginners", price=40_000)
        first = await w.proposal(account, welding)
        second = await w.proposal(account, pottery)
        cookies = await w.sign_in(account)

        r = await page(w.app, cookies, "/me")
        assert r.status_code == 200, r.text
        html = r.text
        assert "€2,500.00" in html  # available: both lots (as the registry writes money)
        assert "region-bretagne" in html and "state" in html  # each lot's funder
        assert "Never" in html  # the state's lot does not expire
        expiry = (await w.balance(account))["lots"]
        region = next(lot for lot in expiry if lot["funder_id"] == "region-bretagne")
        assert region["expires_at"] is not None
        assert day(region["expires_at"]) in html
        for title in ("Welding basics", "Pottery for beginners"):
            assert title in html
        assert "Atelier Numérique" in html  # the provider's name, from the registry
        assert "€600.00" in html and "€400.00" in html  # the prices
        assert "Answer by" in html and f"/me/enrolments/{first}/confirm" in html
        assert f"/me/enrolments/{second}/refuse" in html
        csrf = csrf_of(html)

        # confirm the first: the saga reserves the credit and the enrolment is confirmed
        r = await post_form(w, cookies, f"/me/enrolments/{first}/confirm", {"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/me", r.text
        confirmed = await w.settled(first, "confirmed")
        assert confirmed["covered"] > 0
        r = await page(w.app, cookies, "/me")
        assert "You confirmed your enrolment in Welding basics" in r.text
        # the message shows once
        assert "You confirmed" not in (await page(w.app, cookies, "/me")).text

        # refuse the second: it ends refused and the credit is untouched
        before = await w.balance(account)
        r = await post_form(w, cookies, f"/me/enrolments/{second}/refuse", {"csrf": csrf})
        assert r.status_code == 303, r.text
        refused = await w.enrolment(second)
        assert refused["status"] == "refused" and refused["captured"] == 0
        after = await w.balance(account)
        assert (after["available"], after["reserved"]) == (before["available"], before["reserved"])
        html = (await page(w.app, cookies, "/me")).text
        assert "You refused the proposal for Pottery for beginners" in html
        assert "Refused by you" in html and "Confirmed" in html
        assert f"/me/enrolments/{second}/refuse" not in html  # no longer waiting

        # the history: the grants and the reservation
        r = await page(w.app, cookies, "/me/history")
        assert r.status_code == 200
        assert "Credit granted" in r.text and "Credit reserved for a training" in r.text
        assert "region-bretagne" in r.text

        # one enrolment's page
        r = await page(w.app, cookies, f"/me/enrolments/{first}")
        assert r.status_code == 200 and "Welding basics" in r.text


async def test_a_stale_or_missing_csrf_token_or_another_learners_enrolment_changes_nothing(
    db_url: str,
) -> None:
    async with portal(db_url) as w:
        account = await w.learner_with_credit()
        other = await w.learner_with_credit()
        await w.accredited_provider()
        course = await w.listed_course("Welding basics")
        mine = await w.proposal(account, course)
        theirs = await w.proposal(other, course)
        cookies = await w.sign_in(account)
        other_cookies = await w.sign_in(other)
        csrf = csrf_of((await page(w.app, cookies, "/me")).text)
        other_csrf = csrf_of((await page(w.app, other_cookies, "/me")).text)
        state = await w.payments_state()

        for data in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": other_csrf}):
            r = await post_form(w, cookies, f"/me/enrolments/{mine}/confirm", data)
            assert r.status_code == 403, r.text
            assert r.headers["content-type"].startswith("text/html")
            assert "Nothing was changed" in r.text
        # another learner's proposal: the API answers 404, shown as a page
        for step in ("confirm", "refuse"):
            r = await post_form(w, cookies, f"/me/enrolments/{theirs}/{step}", {"csrf": csrf})
            assert r.status_code == 404, r.text
            assert "We could not find this on your account" in r.text
        r = await page(w.app, cookies, f"/me/enrolments/{theirs}")
        assert r.status_code == 404 and "That did not work" in r.text
        r = await page(w.app, cookies, f"/me/enrolments/{uuid.uuid4()}")
        assert r.status_code == 404
        assert await w.payments_state() == state
        assert (await w.enrolment(mine))["status"] == "awaiting_learner_confirmation"
        assert (await w.enrolment(theirs))["status"] == "awaiting_learner_confirmation"

        # a refusal by the service in plain words: refusing twice
        r = await post_form(w, cookies, f"/me/enrolments/{mine}/refuse", {"csrf": csrf})
        assert r.status_code == 303
        r = await post_form(w, cookies, f"/me/enrolments/{mine}/confirm", {"csrf": csrf})
        assert r.status_code == 409, r.text
        assert "This can no longer be done" in r.text


async def test_without_a_session_the_pages_lead_to_the_sign_in(db_url: str) -> None:
    async with portal(db_url) as w:
        for path in ("/me", "/me/history", f"/me/enrolments/{uuid.uuid4()}"):
            r = await page(w.app, {}, path)
            assert r.status_code == 303, r.text
            assert r.headers["location"] == f"/sign-in?next={path}"
        r = await page(w.app, {"ila_session": "made-up"}, "/me")
        assert r.status_code == 303
        r = await post_form(w, {}, f"/me/enrolments/{uuid.uuid4()}/confirm", {"csrf": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=/me"


async def test_a_completed_course_gives_a_claim_to_contest_and_a_credential_to_download(
    db_url: str,
) -> None:
    async with portal(db_url) as w:
        account = await w.learner_with_credit()
        await w.accredited_provider()
        course = await w.listed_course("Welding basics")
        claim_id, credential_id = await w.credential(account, course)
        cookies = await w.sign_in(account)
        html = (await page(w.app, cookies, "/me")).text
        assert f"/me/claims/{claim_id}/contest" in html
        assert f"/me/credentials/{credential_id}/download" in html
        assert f"/verify?credential={credential_id}" in html
        csrf = csrf_of(html)

        # the signed document, as a file
        r = await page(w.app, cookies, f"/me/credentials/{credential_id}/download")
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith("attachment;")
        document = json.loads(r.content)
        assert "proof" in document
        verified = await w.c.post("/v1/credentials/verify", json=document)
        assert verified.json()["valid"] is True, verified.text
        # another learner cannot download it
        stranger = await w.sign_in(await w.account())
        r = await page(w.app, stranger, f"/me/credentials/{credential_id}/download")
        assert r.status_code == 404 and "proof" not in r.text

        # contesting needs a reason; with one, the claim is held
        r = await post_form(w, cookies, f"/me/claims/{claim_id}/contest", {"csrf": csrf})
        assert r.status_code == 422 and "choose why" in r.text
        assert (await w.claim_status(claim_id))["attestation"] == "pending"
        r = await post_form(
            w,
            cookies,
            f"/me/claims/{claim_id}/contest",
            {"csrf": csrf, "reason_code": "did_not_complete"},
        )
        assert r.status_code == 303, r.text
        claim = await w.claim_status(claim_id)
        assert claim["attestation"] == "contested" and claim["status"] == "held"
        assert claim["contest_reason"] == "did_not_complete"
        html = (await page(w.app, cookies, "/me")).text
        assert "You contested the claim for Welding basics" in html
        assert "I did not complete it" in html
