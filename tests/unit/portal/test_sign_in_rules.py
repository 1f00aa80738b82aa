"""The sign-in's rules that need no provider: production offers no way in but an https
identity provider, ``next`` never leaves the site, cookies are Secure but on the
development server's loopback http."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from services.portal.api.sign_in import DEFAULT_NEXT, cookie_secure, local_path
from services.portal.oidc import OidcConfig, Pkce
from shared.settings import Settings


def _settings(env: str = "development", **oidc: Any) -> Settings:
    # model_copy skips the other production checks (secrets): only the sign-in's are tested
    return Settings().model_copy(update={"env": env, **oidc})


def _request(url: str) -> Request:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    name, _, port = host.partition(":")
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": scheme,
            "server": (name, int(port or (443 if scheme == "https" else 80))),
            "path": "/" + path,
            "query_string": b"",
            "headers": [(b"host", host.encode())],
        }
    )


def test_production_needs_an_https_provider_and_callback() -> None:
    good = {
        "oidc_issuer": "https://idp.example.eu/realms/citizens",
        "oidc_redirect_url": "https://learn.example.eu/sign-in/callback",
    }
    assert OidcConfig.from_settings(_settings("production", **good)).issuer == good["oidc_issuer"]
    for bad in (
        {},
        {**good, "oidc_issuer": None},
        {**good, "oidc_issuer": "http://idp.example.eu"},
        {**good, "oidc_issuer": "http://127.0.0.1:8090/ila"},
        {**good, "oidc_redirect_url": None},
        {**good, "oidc_redirect_url": "http://learn.example.eu/sign-in/callback"},
    ):
        with pytest.raises(ValueError, match="production needs"):
            OidcConfig.from_settings(_settings("production", **bad))


def test_outside_production_plain_http_only_on_loopback() -> None:
    config = OidcConfig.from_settings(_settings(oidc_issuer="http://127.0.0.1:8090/ila/"))
    assert config.issuer == "http://127.0.0.1:8090/ila"
    assert config.scopes == "openid" and config.national_id_claim == "national_id"
    with pytest.raises(ValueError, match="only for a provider on 127"):
        OidcConfig.from_settings(_settings(oidc_issuer="http://idp.example.eu"))
    with pytest.raises(ValueError, match="not an http"):
        OidcConfig.from_settings(_settings(oidc_issuer="ftp://idp.example.eu"))
    # without a provider the portal starts, and its sign-in page says it is not set up
    assert OidcConfig.from_settings(_settings()).issuer is None
    assert OidcConfig.from_settings(_settings(oidc_scopes="profile")).scopes == "openid profile"


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/me", "/me"),
        ("/me/proposals?page=2#top", "/me/proposals?page=2#top"),
        ("/", "/"),
        (None, DEFAULT_NEXT),
        ("", DEFAULT_NEXT),
        ("me", DEFAULT_NEXT),
        ("https://evil.example/", DEFAULT_NEXT),
        ("//evil.example/", DEFAULT_NEXT),
        ("/\\evil.example", DEFAULT_NEXT),
        ("/\t/evil.example", DEFAULT_NEXT),
        ("/ /evil.example", DEFAULT_NEXT),
        ("javascript:alert(1)", DEFAULT_NEXT),
        ("/" + "a" * 2000, DEFAULT_NEXT),
    ],
)
def test_next_is_a_path_of_this_site(asked: str | None, kept: str) -> None:
    assert local_path(asked) == kept


def test_cookies_are_secure_but_on_the_development_servers_loopback_http() -> None:
    dev = _settings()
    assert not cookie_secure(dev, _request("http://127.0.0.1:8000/sign-in"))
    assert not cookie_secure(dev, _request("http://localhost:8000/sign-in"))
    assert cookie_secure(dev, _request("https://127.0.0.1:8000/sign-in"))
    assert cookie_secure(dev, _request("http://portal.internal/sign-in"))
    assert cookie_secure(dev, _request("http://10.0.0.5/sign-in"))
    production = _settings("production")
    assert cookie_secure(production, _request("http://127.0.0.1:8000/sign-in"))


def test_pkce_is_s256_of_a_long_random_verifier() -> None:
    import base64
    import hashlib

    first, second = Pkce.new(), Pkce.new()
    assert first.verifier != second.verifier and 43 <= len(first.verifier) <= 128
    digest = hashlib.sha256(first.verifier.encode()).digest()
    assert first.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
