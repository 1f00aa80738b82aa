"""Signing in and out: OpenID Connect against the configured identity provider.

``GET /sign-in`` starts the flow: a pending row (no account) keeps ``state``, ``nonce``,
the PKCE verifier and the page asked for, a short-lived cookie binds it to this browser,
and the browser goes to the provider. ``GET /sign-in/callback`` takes that row once (a
replayed callback finds nothing), checks ``state``, exchanges the code, checks the ID
token, finds the person's account through the accounts service by the national id in
the ID token (never kept, never logged), drops any session the browser had and opens a
new one (no fixation), then goes to the page asked for if it is a path of this site.
``POST /sign-out`` (CSRF-checked) ends the session.

A person without an account sees a page saying what to do. Every failure is a page with
a 4xx status (502/503 when the provider cannot be reached or sign-in is not set up),
and opens no session.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.portal import sessions
from services.portal.api.render import page
from services.portal.client import ApiError, ServiceApi, http_client
from services.portal.deps import Components, Runtime
from services.portal.oidc import OidcClient, Pkce, SignInFailed
from services.portal.store import sign_in as store
from shared.auth import mint_token
from shared.i18n import N_
from shared.settings import Settings

router = APIRouter(include_in_schema=False)
log = logging.getLogger("ila.portal.sign_in")

PENDING_MINUTES = 10
DEFAULT_NEXT = "/me"
MAX_PARAM = 4096


def pending_cookie_name(settings: Settings) -> str:
    return "ila_sign_in" if settings.env != "production" else "__Host-ila_sign_in"


def cookie_secure(settings: Settings, request: Request) -> bool:
    """Secure always, except plain http on a loopback address outside production (the
    development server), where a browser would never send a Secure cookie back."""
    if settings.env == "production" or request.url.scheme != "http":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def local_path(candidate: str | None) -> str:
    """``candidate`` if it is a path on this site, else the default page: never an open
    redirect (no scheme, no host, no ``//`` or backslash a browser reads as a host)."""
    if not candidate or len(candidate) > 1024 or not candidate.startswith("/"):
        return DEFAULT_NEXT
    if candidate.startswith("//") or "\\" in candidate:
        return DEFAULT_NEXT
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in candidate):
        return DEFAULT_NEXT
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return candidate


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, settings: Settings
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=cookie_secure(settings, request),
        httponly=True,
        samesite="lax",
    )


def _clear_cookie(response: Response, request: Request, name: str, settings: Settings) -> None:
    response.delete_cookie(
        name, path="/", secure=cookie_secure(settings, request), httponly=True, samesite="lax"
    )


def _page(request: Request, name: str, status: int, **context: Any) -> Response:
    return page(request, name, status_code=status, **context)


def _failure(request: Request, exc: SignInFailed, next_path: str = DEFAULT_NEXT) -> Response:
    # the reason, never who: no national id, claim value or token is in a detail
    log.info("sign-in refused (%s): %s", exc.status, exc.detail)
    return _page(
        request,
        "sign_in/problem.html",
        exc.status,
        title=exc.title,
        detail=exc.detail,
        next=next_path,
    )


def _redirect_uri(request: Request, oidc: OidcClient) -> str:
    return oidc.config.redirect_url or str(request.url_for("sign_in_callback"))


@router.get("/sign-in")
async def sign_in(
    request: Request, rt: Runtime, c: Components, next: str | None = None
) -> Response:
    """Start signing in: to the identity provider, and back to ``next`` (a local path)."""
    target = local_path(next)
    try:
        meta = await c.oidc.metadata()
    except SignInFailed as exc:
        return _failure(request, exc, target)
    state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), Pkce.new()
    redirect_uri = _redirect_uri(request, c.oidc)
    pending_id = secrets.token_urlsafe(32)
    now = c.clock.now()
    data = {
        "state": state,
        "nonce": nonce,
        "verifier": pkce.verifier,
        "redirect_uri": redirect_uri,
        "next": target,
    }
    async with rt.uow() as session:
        await store.insert_pending(
            session,
            pending_id,
            secrets.token_urlsafe(32),
            data,
            now,
            now + timedelta(minutes=PENDING_MINUTES),
        )
    response = RedirectResponse(
        c.oidc.authorization_url(meta, redirect_uri, state, nonce, pkce), status_code=303
    )
    response.headers["Cache-Control"] = "no-store"
    name = pending_cookie_name(rt.settings)
    _set_cookie(response, request, name, pending_id, PENDING_MINUTES * 60, rt.settings)
    return response


def portal_token(settings: Settings) -> str:
    """The portal's own short-lived token: it may only look up a signing-in person's account."""
    return mint_token(settings, role="portal", sub="portal", ttl_seconds=60)


async def account_of(request: Request, national_id: str) -> uuid.UUID | None:
    """The account of the person with ``national_id``, asked of the accounts service."""
    settings = request.app.state.settings
    async with http_client(request) as http:
        api = ServiceApi(http, portal_token(settings))
        try:
            found = await api.post("/v1/accounts/lookup", json={"national_id": national_id})
        except ApiError as exc:
            if exc.status in (404, 422):  # no account; or an id no account can have
                return None
            raise SignInFailed(
                503,
                N_("Signing in is not available right now"),
                f"the accounts service answered {exc.status}; try again in a few minutes",
            ) from None
    return uuid.UUID(found["account_id"])


async def _signed_in_account(
    request: Request, c: Components, data: dict[str, Any] | None, params: dict[str, str | None]
) -> uuid.UUID | None:
    """The account the callback signs in; :class:`SignInFailed` if anything is wrong."""
    if data is None:
        raise SignInFailed(
            400,
            N_("The sign-in did not succeed"),
            N_(
                "this sign-in has expired, was already used or was started in another "
                "browser; start again"
            ),
        )
    if any(value is not None and len(value) > MAX_PARAM for value in params.values()):
        raise SignInFailed(
            400, N_("The sign-in did not succeed"), N_("the provider's answer is too long")
        )
    error = params["error"]
    if error is not None:
        why = error if error.replace("_", "").isalnum() and len(error) <= 40 else "error"
        raise SignInFailed(
            400, N_("You were not signed in"), f"the identity provider did not sign you in ({why})"
        )
    state, code = params["state"], params["code"]
    if not state or not hmac.compare_digest(state.encode(), str(data["state"]).encode()):
        raise SignInFailed(
            400,
            N_("The sign-in did not succeed"),
            N_("the answer does not belong to the sign-in this browser started; start again"),
        )
    if not code:
        raise SignInFailed(400, N_("The sign-in did not succeed"), N_("the provider sent no code"))
    id_token = await c.oidc.exchange(code, str(data["verifier"]), str(data["redirect_uri"]))
    claims = await c.oidc.verify_id_token(id_token, str(data["nonce"]))
    return await account_of(request, c.oidc.national_id(claims))


@router.get("/sign-in/callback", name="sign_in_callback")
async def sign_in_callback(
    request: Request,
    rt: Runtime,
    c: Components,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """Back from the identity provider: check everything, then open a session."""
    settings = rt.settings
    pending_id = request.cookies.get(pending_cookie_name(settings))
    now = c.clock.now()
    data = None
    if pending_id and len(pending_id) <= 128:
        async with rt.uow() as session:
            data = await store.take_pending(session, pending_id, now)
    next_path = local_path(str(data["next"])) if data else DEFAULT_NEXT
    try:
        account_id = await _signed_in_account(
            request, c, data, {"code": code, "state": state, "error": error}
        )
    except SignInFailed as exc:
        response = _failure(request, exc, next_path)
    else:
        if account_id is None:
            response = _page(request, "sign_in/no_account.html", 200)
        else:
            response = RedirectResponse(next_path, status_code=303)
            # a new session id at every sign-in; the one this browser had (if any) is gone
            previous = request.cookies.get(sessions.cookie_name(settings))
            if previous and len(previous) <= 128:
                await sessions.close_session(rt, previous)
            session_id = await sessions.open_session(rt, account_id, now)
            _set_cookie(
                response,
                request,
                sessions.cookie_name(settings),
                session_id,
                sessions.SESSION_HOURS * 3600,
                settings,
            )
    _clear_cookie(response, request, pending_cookie_name(settings), settings)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request,
    rt: Runtime,
    c: Components,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """End the session (the form's CSRF token must be the session's)."""
    settings = rt.settings
    session_id = request.cookies.get(sessions.cookie_name(settings))
    signed = None
    if session_id and len(session_id) <= 128:
        signed = await sessions.load_session(rt, session_id, c.clock.now())
    response = RedirectResponse("/signed-out", status_code=303)
    if signed is not None:
        sessions.check_csrf(signed, csrf)
        await sessions.close_session(rt, signed.session_id)
    _clear_cookie(response, request, sessions.cookie_name(settings), settings)
    return response


@router.get("/signed-out")
async def signed_out(request: Request) -> Response:
    return _page(request, "sign_in/signed_out.html", 200)
