"""Server-side sessions of the people who signed in.

The cookie carries only a random id (``Secure``, ``HttpOnly``, ``SameSite=Lax``; its name
has the ``__Host-`` prefix outside development, so no other site or path can set it). The
row holds the account id of the person (never a national id), a secret for the CSRF tokens
of the forms, and the expiry. Signing out deletes the row; an expired row is refused and
swept.

Pages depend on :func:`signed_in`: without a live session they redirect to the sign-in
with the page asked for as ``next``. Every form that changes something carries
:attr:`SignedIn.csrf_token` in a hidden field ``csrf`` and calls :func:`check_csrf`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from services.portal.deps import Components, Runtime
from services.portal.store import sessions as store
from shared.auth import mint_token
from shared.problems import Forbidden
from shared.service import ServiceRuntime
from shared.settings import Settings

SESSION_HOURS = 8
LEARNER_TOKEN_SECONDS = 300


def cookie_name(settings: Settings) -> str:
    # browsers refuse ``__Host-`` cookies that are not Secure, and development runs on http
    return "ila_session" if settings.env != "production" else "__Host-ila_session"


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    account_id: uuid.UUID
    csrf_token: str


class SignInRequired(HTTPException):
    """No live session: the page answers with a redirect to the sign-in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(
            status_code=303, headers={"Location": f"/sign-in?next={quote(next_path, safe='/')}"}
        )


def _csrf_token(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


async def open_session(
    rt: ServiceRuntime, account_id: uuid.UUID, now: datetime, data: dict[str, Any] | None = None
) -> str:
    """A new session for ``account_id``; its id goes into the cookie."""
    session_id = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=SESSION_HOURS)
    async with rt.uow() as session:
        await store.insert(
            session, session_id, account_id, secrets.token_urlsafe(32), data or {}, now, expires
        )
    return session_id


async def close_session(rt: ServiceRuntime, session_id: str) -> None:
    async with rt.uow() as session:
        await store.delete(session, session_id)


async def load_session(rt: ServiceRuntime, session_id: str, now: datetime) -> SignedIn | None:
    async with rt.uow() as session:
        row = await store.live(session, session_id, now)
    if row is None:
        return None
    return SignedIn(session_id, row.account_id, _csrf_token(row.csrf_secret, session_id))


async def signed_in(request: Request, rt: Runtime, components: Components) -> SignedIn:
    """The person signed in on this request, or a redirect to the sign-in."""
    session_id = request.cookies.get(cookie_name(rt.settings))
    found = None
    if session_id and len(session_id) <= 128:
        found = await load_session(rt, session_id, components.clock.now())
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return found


Learner = Annotated[SignedIn, Depends(signed_in)]


def check_csrf(signed: SignedIn, submitted: str | None) -> None:
    """A form's ``csrf`` field must be this session's token."""
    if not submitted or not hmac.compare_digest(submitted, signed.csrf_token):
        raise Forbidden("the form is stale or was not sent from this site; reload the page")


def learner_token(settings: Settings, signed: SignedIn) -> str:
    """A short-lived learner token for the services' APIs, for this request only."""
    return mint_token(
        settings, role="learner", sub=str(signed.account_id), ttl_seconds=LEARNER_TOKEN_SECONDS
    )
