"""The portal as an OpenID Connect relying party: the authorization code flow with PKCE
(S256), ``state`` and ``nonce``, against the provider named by ``ILA_OIDC_ISSUER``.

:class:`OidcClient` reads the provider's discovery document, builds the authorization
request, exchanges a code at the token endpoint (with the PKCE verifier, and the client
secret of a confidential client) and checks the ID token: its signature against the
provider's JWKS (asymmetric algorithms only), issuer, audience (and ``azp``), expiry and
nonce. It hands back the national id from the configured claim and never keeps it.

Every refusal is a :class:`SignInFailed` with the status of the page the person sees:
400 for what the request or the provider's answer got wrong, 502 when the provider cannot
be reached or answers nonsense, 503 when sign-in is not configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from shared.i18n import N_
from shared.settings import Settings

TIMEOUT = httpx.Timeout(10.0)
METADATA_SECONDS = 3600.0
# an unknown ``kid`` fetches the JWKS again (a key rotation), at most this often
JWKS_REFRESH_SECONDS = 10.0
# asymmetric signatures only: no ``none``, no HMAC keyed with a secret the client also has
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ALGORITHMS_EDDSA = ("EdDSA",)
JSON_ACCEPT = {"Accept": "application/json"}


class SignInFailed(Exception):
    """The sign-in cannot go on: the page's status, a title and what the person can do."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


def _refused(detail: str) -> SignInFailed:
    return SignInFailed(400, N_("The sign-in did not succeed"), detail)


def _unreachable(detail: str) -> SignInFailed:
    return SignInFailed(502, N_("The identity provider cannot be reached"), detail)


def _is_loopback(host: str | None) -> bool:
    return host in {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class OidcConfig:
    issuer: str | None
    client_id: str
    client_secret: str | None
    redirect_url: str | None
    national_id_claim: str
    scopes: str
    leeway_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        """The configuration; in production an https issuer and callback are required (there
        is no other way to sign in, and no shortcut)."""
        issuer = (settings.oidc_issuer or "").strip().rstrip("/") or None
        redirect = (settings.oidc_redirect_url or "").strip() or None
        if settings.env == "production":
            problems = []
            if issuer is None or urlsplit(issuer).scheme != "https":
                problems.append("ILA_OIDC_ISSUER (the identity provider, over https)")
            if redirect is None or urlsplit(redirect).scheme != "https":
                problems.append("ILA_OIDC_REDIRECT_URL (the portal's /sign-in/callback, https)")
            if problems:
                raise ValueError("production needs " + " and ".join(problems))
        for name, url in (("ILA_OIDC_ISSUER", issuer), ("ILA_OIDC_REDIRECT_URL", redirect)):
            parts = urlsplit(url or "")
            if url and (parts.scheme not in {"http", "https"} or not parts.hostname):
                raise ValueError(f"{name} is not an http(s) URL")
            if parts.scheme == "http" and not _is_loopback(parts.hostname):
                raise ValueError(f"{name} over plain http is only for a provider on 127.0.0.1")
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        secret = settings.oidc_client_secret
        return cls(
            issuer=issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            redirect_url=redirect,
            national_id_claim=settings.oidc_national_id_claim,
            scopes=" ".join(scopes),
            leeway_seconds=settings.jwt_leeway_seconds,
        )


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    basic_auth: bool  # client_secret_basic (else client_secret_post)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-] (RFC 7636)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


class OidcClient:
    """The relying party of one provider; discovery and keys cached, nothing of a person."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_at = 0.0

    @property
    def configured(self) -> bool:
        return self.config.issuer is not None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                response = await http.get(url, headers=JSON_ACCEPT)
        except httpx.HTTPError as exc:
            raise _unreachable(f"{type(exc).__name__} from {urlsplit(url).netloc}") from exc
        if response.status_code != 200:
            raise _unreachable(f"{urlsplit(url).path} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise _unreachable(f"{urlsplit(url).path} did not answer JSON") from exc
        if not isinstance(body, dict):
            raise _unreachable(f"{urlsplit(url).path} did not answer a JSON object")
        return body

    async def metadata(self) -> ProviderMetadata:
        """The provider's endpoints from its discovery document (kept for an hour)."""
        issuer = self.config.issuer
        if issuer is None:
            raise SignInFailed(
                503,
                N_("Signing in is not set up"),
                "this server has no identity provider (ILA_OIDC_ISSUER); in development, "
                "start the test provider with `ila oidc start` and set ILA_OIDC_ISSUER",
            )
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata_at < METADATA_SECONDS:
            return self._metadata
        doc = await self._get_json(f"{issuer}/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise _unreachable("its discovery document names another issuer")
        endpoints: dict[str, str] = {}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(key)
            scheme = urlsplit(value).scheme if isinstance(value, str) else ""
            if scheme not in {"http", "https"} or (
                scheme == "http" and urlsplit(issuer).scheme == "https"
            ):
                raise _unreachable(f"its discovery document has no usable {key}")
            endpoints[key] = str(value)
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        self._metadata = ProviderMetadata(
            issuer=issuer, basic_auth="client_secret_basic" in methods, **endpoints
        )
        self._metadata_at = now
        return self._metadata

    def authorization_url(
        self, meta: ProviderMetadata, redirect_uri: str, state: str, nonce: str, pkce: Pkce
    ) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.config.scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return f"{meta.authorization_endpoint}{separator}{query}"

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for ``code`` and the PKCE ``verifier``."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": self.config.client_id,
        }
        extra: dict[str, Any] = {}
        secret = self.config.client_secret
        if secret is not None and meta.basic_auth:
            # RFC 6749 2.3.1: each part form-encoded before the Basic scheme
            extra["auth"] = (_form_encoded(self.config.client_id), _form_encoded(secret))
        elif secret is not None:
            form["client_secret"] = secret
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                response = await http.post(
                    meta.token_endpoint, data=form, headers=JSON_ACCEPT, **extra
                )
        except httpx.HTTPError as exc:
            raise _unreachable(f"{type(exc).__name__} from its token endpoint") from exc
        if 400 <= response.status_code < 500:
            error = _error_code(response)
            raise _refused(
                f"the identity provider refused the sign-in code ({error}): it may have been "
                "used already or have expired; start again"
            )
        if response.status_code != 200:
            raise _unreachable(f"its token endpoint answered {response.status_code}")
        try:
            token = response.json().get("id_token")
        except (ValueError, AttributeError) as exc:
            raise _unreachable("its token endpoint did not answer JSON") from exc
        if not isinstance(token, str) or not token:
            raise _unreachable("its token endpoint gave no ID token")
        return token

    async def _key(self, meta: ProviderMetadata, kid: str | None) -> jwt.PyJWK:
        stale = not self._keys or time.monotonic() - self._keys_at > JWKS_REFRESH_SECONDS
        if (kid is None or kid not in self._keys) and stale:
            jwks = await self._get_json(meta.jwks_uri)
            try:
                keyset = jwt.PyJWKSet.from_dict(jwks)
            except jwt.PyJWTError as exc:
                raise _unreachable("its JWKS holds no usable key") from exc
            self._keys = {k.key_id or "": k for k in keyset.keys}
            self._keys_at = time.monotonic()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        key = self._keys.get(kid or "")
        if key is None:
            raise _refused("the ID token is signed with a key the identity provider does not list")
        return key

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry and ``nonce``
        are checked; a :class:`SignInFailed` (400) otherwise."""
        meta = await self.metadata()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refused("the ID token cannot be read") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS + ALGORITHMS_EDDSA:
            raise _refused(f"the ID token's signature algorithm {str(alg)[:20]!r} is refused")
        kid = header.get("kid")
        key = await self._key(meta, kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.client_id,
                issuer=meta.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise _refused(f"the ID token is not valid ({type(exc).__name__})") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise _refused("the ID token was issued to another client")
        if not isinstance(claims["nonce"], str) or not hmac.compare_digest(
            claims["nonce"].encode(), nonce.encode()
        ):
            raise _refused("the ID token belongs to another sign-in (its nonce differs)")
        return claims

    def national_id(self, claims: dict[str, Any]) -> str:
        """The national id in the configured claim (never logged, never stored)."""
        name = self.config.national_id_claim
        value = claims.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise _refused(
                f"the identity provider did not say who you are (no {name!r} claim); "
                "ask its help desk"
            )
        return value.strip()


def _form_encoded(value: str) -> str:
    return urlencode({"": value})[1:]


def _error_code(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str) and error.replace("_", "").isalnum() and len(error) <= 40:
        return error
    return f"status {response.status_code}"
