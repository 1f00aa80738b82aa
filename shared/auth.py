"""Bearer-token authentication and role checks, as the public API contract states.

Development and tests sign HS256 with ``ILA_JWT_SECRET``; production verifies RS256 or
EdDSA signatures with a configured public key or JWKS and never accepts HS256.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from fastapi import Request

from shared.problems import Forbidden, Unauthorized
from shared.settings import Settings

Role = Literal[
    "agency",
    "provider",
    "learner",
    "auditor",
    "admin",
    "finance",
    "qa",
    "funder",
    "portal",
    "register",
]
ROLES: tuple[Role, ...] = (
    "agency",
    "provider",
    "learner",
    "auditor",
    "admin",
    "finance",  # approves what moves money (four eyes), never proposes it
    "qa",  # quality-assurance authority: accredits and suspends providers
    "funder",  # an employer, region, sector fund or the state, with funder_id
    "portal",  # the people's pages: may only find the account of a person signing in
    "register",  # the population register: may only send its feed (opens and closes accounts)
)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    agency_id: str | None = None
    provider_id: str | None = None
    funder_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.sub}"

    @property
    def account_id(self) -> uuid.UUID | None:
        """A learner token's subject is their account id."""
        if self.role != "learner":
            return None
        try:
            return uuid.UUID(self.sub)
        except ValueError:
            return None


class TokenVerifier:
    """Checks a bearer token's signature, issuer, audience, expiry and lifetime.

    With a JWKS URL the keys are fetched off the event loop, kept by ``kid`` and fetched
    again when a token names a ``kid`` not seen yet (a key rotation).

    On the HTTP path a token that passed is remembered, by its exact text, until it expires
    and for at most ``REMEMBERED_FOR`` seconds: a client sends the same token with request
    after request, and checking it again was a fifth of a small request's CPU (HS256; a
    public-key signature costs more). What is remembered is only ever a token that passed
    every check; a refused token is checked again each time it comes.
    """

    REMEMBERED_FOR = 60.0
    REMEMBERED_AT_MOST = 4096

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # token → (principal, monotonic instant until which it is taken as checked)
        self._passed: dict[str, tuple[Principal, float]] = {}
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        self._jwks_keys: dict[str, Any] = {}
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)
            self.algorithms = ["RS256", "EdDSA"]
        elif settings.jwt_public_key:
            self._key = settings.jwt_public_key
            self.algorithms = ["RS256", "EdDSA"]
        else:
            self._key = settings.jwt_secret
            self.algorithms = ["HS256"]

    def verify(self, token: str) -> Principal:
        """Synchronous check (the CLI and tests); the HTTP path uses :meth:`verify_async`."""
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return self.check(token, key)

    async def verify_async(self, token: str) -> Principal:
        remembered = self._passed.get(token)
        if remembered is not None:
            if time.monotonic() < remembered[1]:
                return remembered[0]
            del self._passed[token]
        principal, expires = await self._verify_async(token)
        self._remember(token, principal, expires)
        return principal

    def _remember(self, token: str, principal: Principal, expires: float) -> None:
        left = min(expires - time.time(), self.REMEMBERED_FOR)
        if left <= 0:
            return
        if len(self._passed) >= self.REMEMBERED_AT_MOST:
            del self._passed[next(iter(self._passed))]  # the longest remembered
        self._passed[token] = (principal, time.monotonic() + left)

    async def _verify_async(self, token: str) -> tuple[Principal, float]:
        if self._jwks is None:
            return self._check(token, self._key)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        if not isinstance(kid, str) or not 0 < len(kid) <= 200:
            raise Unauthorized("invalid token: no usable kid in its header")
        key = self._jwks_keys.get(kid)
        if key is None:
            try:
                signing = await asyncio.to_thread(self._jwks.get_signing_key, kid)
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid token: {exc}") from exc
            key = self._jwks_keys[kid] = signing.key
        return self._check(token, key)

    def check(self, token: str, key: Any) -> Principal:
        return self._check(token, key)[0]

    def _check(self, token: str, key: Any) -> tuple[Principal, float]:
        """The token's principal and its expiry (seconds since the epoch)."""
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        # a signature does not make a token for life: refuse what lives past the bound
        exp = claims["exp"]
        issued = claims.get("iat")
        now = time.time()
        if not isinstance(exp, int | float) or exp - now > (
            s.jwt_max_lifetime_seconds + s.jwt_leeway_seconds
        ):
            raise Unauthorized("invalid token: it lives longer than the allowed lifetime")
        if isinstance(issued, int | float) and exp - issued > s.jwt_max_lifetime_seconds:
            raise Unauthorized("invalid token: it lives longer than the allowed lifetime")
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthorized("invalid token: unknown role")
        if role == "agency" and not claims.get("agency_id"):
            raise Unauthorized("invalid token: agency tokens need agency_id")
        if role == "provider" and not claims.get("provider_id"):
            raise Unauthorized("invalid token: provider tokens need provider_id")
        if role == "funder" and not claims.get("funder_id"):
            raise Unauthorized("invalid token: funder tokens need funder_id")
        principal = Principal(
            sub=str(claims["sub"]),
            role=role,
            agency_id=claims.get("agency_id"),
            provider_id=claims.get("provider_id"),
            funder_id=claims.get("funder_id"),
        )
        return principal, float(exp)


def mint_token(
    settings: Settings,
    *,
    role: Role,
    sub: str,
    agency_id: str | None = None,
    provider_id: str | None = None,
    funder_id: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """A development token signed HS256 with the configured secret."""
    if settings.env == "production":
        raise RuntimeError("development tokens are not minted in production")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if agency_id:
        claims["agency_id"] = agency_id
    if provider_id:
        claims["provider_id"] = provider_id
    if funder_id:
        claims["funder_id"] = funder_id
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


async def principal_from(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify_async(token.strip())


def require(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency admitting only tokens with one of ``roles``."""

    async def dependency(request: Request) -> Principal:
        principal = await principal_from(request)
        if principal.role not in roles:
            raise Forbidden(f"role {principal.role!r} may not do this")
        return principal

    return dependency
