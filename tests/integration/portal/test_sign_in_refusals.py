"""Every way a sign-in can go wrong ends on a page with a 4xx status (502/503 when the
provider cannot be reached or sign-in is not set up), never a 500, and opens no session:
an answer for another browser's sign-in, a replayed callback, a code stolen from another
sign-in, an ID token for another nonce, a tampered or foreign ID token, no national id."""

from __future__ import annotations

import base64
import json
import secrets

import httpx
import pytest
from sqlalchemy import text

from ila.oidc_provider import OidcProvider
from services.portal.deps import PortalComponents
from services.portal.oidc import OidcClient, Pkce, SignInFailed
from shared.service import components_of
from tests.integration.portal.sign_in_support import (
    Portal,
    param,
    portal,
    provider_login,
    with_param,
)
from tests.integration.support.accounts import new_national_id
from tests.support import free_port

pytestmark = pytest.mark.postgres


async def _refused(p: Portal, response: httpx.Response, status: int, says: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert says in response.text
    assert "ila_session" not in response.headers.get("set-cookie", "")
    assert await p.signed_in_sessions() == []
    assert (await p.client.get("/me")).status_code == 303


async def test_an_answer_to_another_sign_in_is_refused(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        # the state the provider sends back is not the one this browser's sign-in holds
        callback = await provider_login(await p.start(), national_id)
        forged = with_param(callback, state=secrets.token_urlsafe(32))
        await _refused(p, await p.client.get(forged), 400, "does not belong to the sign-in")
        assert await p.sessions() == []  # the sign-in under way is spent

        # a callback reaching a browser that started no sign-in (login CSRF)
        callback = await provider_login(await p.start(), national_id)
        p.client.cookies.clear()
        await _refused(p, await p.client.get(callback), 400, "started in another browser")
        # no state at all
        await p.start()
        await _refused(p, await p.client.get("/sign-in/callback?code=x"), 400, "does not belong")


async def test_a_replayed_callback_opens_no_second_session(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        authorize = await p.start()
        pending = p.client.cookies.get("ila_sign_in")
        callback = await provider_login(authorize, national_id)
        assert (await p.client.get(callback)).status_code == 303
        [session] = await p.signed_in_sessions()
        # the same answer again, with the sign-in's own cookie put back
        p.client.cookies.clear()
        p.client.cookies.set("ila_sign_in", pending or "", domain="portal.test")
        r = await p.client.get(callback)
        assert r.status_code == 400 and "already used" in r.text
        assert await p.signed_in_sessions() == [session]


async def test_a_code_from_another_sign_in_fails_its_pkce_check(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        stolen = await provider_login(await p.start(), new_national_id())
        # this browser's own sign-in, answered with the other sign-in's code
        authorize = await p.start()
        injected = with_param(stolen, state=param(authorize, "state"))
        await _refused(p, await p.client.get(injected), 400, "invalid_grant")


async def test_an_id_token_for_another_nonce_is_refused(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        authorize = with_param(await p.start(), nonce=secrets.token_urlsafe(32))
        callback = await provider_login(authorize, national_id)
        await _refused(p, await p.client.get(callback), 400, "nonce")


async def test_a_refusal_by_the_provider_and_a_missing_national_id(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        state = param(await p.start(), "state")
        r = await p.client.get(
            "/sign-in/callback", params={"error": "access_denied", "state": state}
        )
        await _refused(p, r, 400, "did not sign you in (access_denied)")
        # the provider signs a person in but says nothing of their national id
        callback = await provider_login(await p.start(), None)
        await _refused(p, await p.client.get(callback), 400, "no &#39;national_id&#39; claim")


async def test_a_sign_in_left_too_long_is_refused(db_url: str, oidc_provider: OidcProvider) -> None:
    async with portal(db_url, oidc_provider) as p:
        national_id = new_national_id()
        await p.open_account(national_id)
        callback = await provider_login(await p.start(), national_id)
        async with p.app.state.runtimes["portal"].uow() as session:
            await session.execute(
                text("UPDATE portal.sessions SET expires_at = now() - interval '1 second'")
            )
        await _refused(p, await p.client.get(callback), 400, "has expired")


async def test_a_provider_that_cannot_be_reached_or_none_at_all(db_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}/ila"
    async with portal(db_url, None, oidc_issuer=down) as p:
        r = await p.client.get("/sign-in")
        await _refused(p, r, 502, "cannot be reached")
        assert await p.sessions() == []
    async with portal(db_url, None) as p:
        r = await p.client.get("/sign-in")
        await _refused(p, r, 503, "not set up")
        assert await p.sessions() == []


async def _id_token(issuer: str, nonce: str, client_id: str = "ila-portal") -> str:
    """An ID token ``issuer`` gives through the code flow, for the tests to tamper with."""
    pkce = Pkce.new()
    redirect = "https://portal.test/sign-in/callback"
    query = httpx.QueryParams(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": "openid",
            "state": "s",
            "nonce": nonce,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        }
    )
    callback = await provider_login(f"{issuer}/authorize?{query}", "FR123456789012")
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            f"{issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": param(callback, "code"),
                "redirect_uri": redirect,
                "client_id": client_id,
                "code_verifier": pkce.verifier,
            },
        )
    assert r.status_code == 200, r.text
    return str(r.json()["id_token"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(token: str, index: int) -> dict[str, object]:
    piece = token.split(".")[index]
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))
    )
    return decoded


async def test_tampered_and_foreign_id_tokens_are_refused(
    db_url: str, oidc_provider: OidcProvider
) -> None:
    async with portal(db_url, oidc_provider) as p:
        oidc: OidcClient = components_of(p.app.state.runtimes["portal"], PortalComponents).oidc
        nonce = secrets.token_urlsafe(16)
        token = await _id_token(oidc_provider.issuer, nonce)
        claims = await oidc.verify_id_token(token, nonce)
        assert oidc.national_id(claims) == "FR123456789012"  # the genuine one passes

        header, payload, signature = token.split(".")
        changed = {**_part(token, 1), "national_id": "FR000000000001"}
        tampered = f"{header}.{_b64(json.dumps(changed).encode())}.{signature}"
        unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}."
        hmac_header = {**_part(token, 0), "alg": "HS256"}
        hmac_signed = f"{_b64(json.dumps(hmac_header).encode())}.{payload}.{signature}"
        other_client = await _id_token(oidc_provider.issuer, nonce, client_id="another-client")
        # the same provider software for another issuer signs with its own key and kid
        elsewhere = oidc_provider.issuer.rsplit("/", 1)[0] + "/elsewhere"
        foreign = await _id_token(elsewhere, nonce)
        relabelled_header = {**_part(foreign, 0), "kid": _part(token, 0)["kid"]}
        relabelled = ".".join(
            [_b64(json.dumps(relabelled_header).encode()), *foreign.split(".")[1:]]
        )
        cases = {
            "tampered payload": (tampered, nonce),
            "no signature": (unsigned, nonce),
            "HMAC instead of RSA": (hmac_signed, nonce),
            "another client's token": (other_client, nonce),
            "another issuer's key": (foreign, nonce),
            "another issuer's token under this issuer's key id": (relabelled, nonce),
            "another nonce": (token, "not-the-nonce"),
            "not a token": ("not.a-token", nonce),
        }
        for case, (candidate, expected_nonce) in cases.items():
            with pytest.raises(SignInFailed) as refused:
                await oidc.verify_id_token(candidate, expected_nonce)
            assert refused.value.status == 400, case
