"""Signing in through the real OIDC test provider: the authorization code flow with PKCE
lands the person on the page they asked for, with a server-side session whose cookie is
Secure, HttpOnly and SameSite=Lax, a new session id at each sign-in, and a sign-out that
ends it. The national id goes from the provider to the accounts service and nowhere else."""

from __future__ import annotations

import logging
import uuid

import pytest

from ila.oidc_provider import OidcProvider
from tests.integration.portal.sign_in_support import (
    PORTAL,
    param,
    portal,
    provider_login,
    set_cookie_headers,
)
from tests.integration.support.accounts import new_national_id

pytestmark = pytest.mark.postgres

SESSION_COOKIE = "ila_session"
PENDING_COOKIE = "ila_sign_in"


async def test_a_person_signs_in_and_lands_on_the_page_they_asked_for(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        account_id = await p.open_account(national_id)

        # a page that needs a signed-in person sends the browser to the sign-in
        r = await p.client.get("/me")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=/me"

        authorize = await p.start("/me")
        assert authorize.startswith(f"{oidc_provider.issuer}/authorize?")
        assert param(authorize, "response_type") == "code"
        assert param(authorize, "client_id") == "ila-portal"
        assert param(authorize, "redirect_uri") == f"{PORTAL}/sign-in/callback"
        assert param(authorize, "code_challenge_method") == "S256"
        assert len(param(authorize, "code_challenge")) == 43
        assert param(authorize, "scope") == "openid"
        assert len(param(authorize, "state")) >= 32 and len(param(authorize, "nonce")) >= 32
        # the flow waits in a row that signs nobody in, bound to this browser by a cookie
        pending = await p.sessions()
        assert len(pending) == 1 and pending[0]["account_id"] is None
        assert p.client.cookies.get(PENDING_COOKIE) == pending[0]["session_id"]
        assert await p.signed_in_sessions() == []

        callback = await provider_login(authorize, national_id)
        assert callback.startswith(f"{PORTAL}/sign-in/callback?")
        r = await p.client.get(callback)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/me"
        cookies = set_cookie_headers(r)
        flags = [f.strip().lower() for f in cookies[SESSION_COOKIE].split(";")]
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= set(flags)
        assert any(f.startswith("max-age=") for f in flags)
        assert "max-age=0" in cookies[PENDING_COOKIE].lower()  # the pending cookie is gone

        sessions = await p.sessions()
        assert [s["account_id"] for s in sessions] == [account_id]
        assert sessions[0]["session_id"] == p.client.cookies.get(SESSION_COOKIE)
        page = await p.client.get("/me")
        assert page.status_code == 200 and account_id in page.text


async def test_each_sign_in_opens_a_new_session_and_drops_the_old_one(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        # an id planted in the browser before the sign-in is never the one signed in
        planted = "planted-session-id-0123456789"
        p.client.cookies.set(SESSION_COOKIE, planted, domain="portal.test")
        assert (await p.sign_in(national_id)).status_code == 303
        first = p.client.cookies.get(SESSION_COOKIE)
        assert first and first != planted
        assert (await p.sign_in(national_id)).status_code == 303
        second = p.client.cookies.get(SESSION_COOKIE)
        assert second and second != first
        assert [s["session_id"] for s in await p.signed_in_sessions()] == [second]


async def test_signing_out_ends_the_session_for_good(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        await p.sign_in(national_id)
        cookie = p.client.cookies.get(SESSION_COOKIE)
        assert cookie
        page = await p.client.get("/me")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]

        # without the form's token, or with another, nothing happens
        for data in ({}, {"csrf": "not-the-token"}):
            r = await p.client.post("/sign-out", data=data)
            assert r.status_code == 403
            assert (await p.client.get("/me")).status_code == 200

        r = await p.client.post("/sign-out", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/signed-out"
        assert "max-age=0" in set_cookie_headers(r)[SESSION_COOKIE].lower()
        assert await p.signed_in_sessions() == []
        assert (await p.client.get("/signed-out")).status_code == 200
        # the old cookie, sent again, signs nobody in
        p.client.cookies.set(SESSION_COOKIE, cookie, domain="portal.test")
        r = await p.client.get("/me")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


async def test_over_plain_http_on_loopback_in_development_the_cookie_is_not_secure(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    # the development server: a browser never sends a Secure cookie back over http
    async with portal(db_url, oidc_provider, base="http://127.0.0.1:8000") as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        r = await p.sign_in(national_id)
        assert r.status_code == 303, r.text
        flags = [f.strip().lower() for f in set_cookie_headers(r)[SESSION_COOKIE].split(";")]
        assert "secure" not in flags and {"httponly", "samesite=lax"} <= set(flags)
        assert (await p.client.get("/me")).status_code == 200
    # anywhere else over http (a proxy's address, a host name) the cookies are Secure all
    # the same: the browser keeps them for https only, and the sign-in cannot go on
    async with portal(db_url, oidc_provider, base="http://portal.internal") as p:
        r = await p.client.get("/sign-in")
        assert r.status_code == 303
        flags = [f.strip().lower() for f in set_cookie_headers(r)[PENDING_COOKIE].split(";")]
        assert "secure" in flags


@pytest.mark.parametrize(
    "asked",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "",
    ],
)
async def test_next_is_never_another_site(
    db_url: str, oidc_provider: OidcProvider, asked: str
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        r = await p.sign_in(national_id, next_path=asked)
        assert r.status_code == 303 and r.headers["location"] == "/me"


async def test_a_local_next_with_its_query_is_kept(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        r = await p.sign_in(national_id, next_path="/me/proposals?page=2")
        assert r.status_code == 303 and r.headers["location"] == "/me/proposals?page=2"


async def test_a_person_without_an_account_is_told_what_to_do(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        r = await p.sign_in(new_national_id())
        assert r.status_code == 200
        assert "You have no learning account yet" in r.text
        assert "What to do" in r.text
        assert SESSION_COOKIE not in set_cookie_headers(r)
        assert await p.sessions() == []  # the pending row is gone too
        # a national id no account can have (the accounts service refuses its form)
        r = await p.sign_in("<not an id>")
        assert r.status_code == 200 and "You have no learning account yet" in r.text
        assert await p.sessions() == []


async def test_the_national_id_is_in_no_portal_table_and_no_log(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async with portal(db_url, oidc_provider, log_level="DEBUG") as p:
        keep = Keep(level=logging.DEBUG)
        logging.getLogger().addHandler(keep)
        try:
            known, unknown = new_national_id(), new_national_id()
            await p.open_account(known)
            authorize = await p.start("/me")
            callback = await provider_login(authorize, known)
            during = await p.rows()  # while the flow waits for its callback
            assert (await p.client.get(callback)).status_code == 303
            after = await p.rows()
            assert (await p.sign_in(unknown)).status_code == 200
            # failures are logged (their reason): still no national id
            assert (await p.sign_in(known, next_path="/me")).status_code == 303
            state_mismatch = await provider_login(await p.start(), known)
            assert (await p.client.get(state_mismatch + "x")).status_code == 400
            rows = during + after + await p.rows()
        finally:
            logging.getLogger().removeHandler(keep)
    assert any(r.get("account_id") for r in rows)
    assert any(rec.name == "ila.portal.sign_in" for rec in records)  # the capture works
    logged = "\n".join(f"{rec.name} {rec.getMessage()} {rec.args!r}" for rec in records)
    stored = repr(rows)
    for national_id in (known, unknown):
        for form in (national_id, national_id.lower(), national_id[2:]):
            assert form not in stored
            assert form not in logged


async def test_a_session_belongs_to_the_person_the_provider_vouched_for(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        alice, bob = new_national_id(), new_national_id()
        alice_account = await p.open_account(alice)
        bob_account = await p.open_account(bob)
        await p.sign_in(bob)
        page = await p.client.get("/me")
        assert bob_account in page.text and alice_account not in page.text
        # spaces and letter case do not make another person (the accounts' keyed hash)
        spaced = f"{alice[:2].lower()} {alice[2:]}"
        await p.sign_in(spaced)
        assert [s["account_id"] for s in await p.signed_in_sessions()] == [alice_account]
        assert uuid.UUID(alice_account)
