"""The learner's pages: their account at a glance (``/me``), its history, one enrolment,
and a credential to download.

Every read goes through the services' public APIs with a short-lived learner token for the
signed-in account, so each service applies its own scope: an enrolment or a credential of
someone else answers 404 there, and here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import flash
from services.portal.api import account_view
from services.portal.api.render import page
from services.portal.client import ApiError, ServiceApi, http_client
from services.portal.deps import Runtime
from services.portal.sessions import Learner, SignedIn, learner_token
from shared.i18n import N_

router = APIRouter(prefix="/me", tags=["learner pages"])

# what a refusal means, in plain words (message ids), by the API's status
PLAIN = {
    400: N_("The request could not be read."),
    403: N_("You may not do this."),
    404: N_(
        "We could not find this on your account. It may belong to someone else, or it no "
        "longer exists."
    ),
    405: N_("This cannot be done from here yet."),
    409: N_("This can no longer be done."),
    422: N_("This could not be accepted as sent."),
}
UNAVAILABLE = N_("The service could not answer. Please try again in a moment.")


@asynccontextmanager
async def services(request: Request, rt: Runtime, signed: SignedIn) -> AsyncIterator[ServiceApi]:
    """The services' APIs, called as the signed-in learner."""
    async with http_client(request) as http:
        yield ServiceApi(http, learner_token(rt.settings, signed))


def refusal(request: Request, signed: SignedIn, error: ApiError) -> HTMLResponse:
    """A service said no: the page says why, with a 4xx status (a service that failed is a
    502, never a 500)."""
    status = error.status if 400 <= error.status < 500 else 502
    plain = PLAIN.get(status, UNAVAILABLE)
    detail = error.problem.get("detail") if status < 500 else None
    return page(
        request,
        "learner/problem.html",
        status_code=status,
        signed=signed,
        plain=plain,
        detail=detail,
        code=error.problem.get("code"),
    )


@router.get("", response_class=HTMLResponse)
async def home(request: Request, rt: Runtime, signed: Learner) -> Response:
    try:
        async with services(request, rt, signed) as api:
            view = await account_view.overview(api, signed.account_id)
    except ApiError as error:
        return refusal(request, signed, error)
    return page(
        request,
        "learner/me.html",
        signed=signed,
        view=view,
        notice=await flash.take(rt, signed),
    )


@router.get("/history", response_class=HTMLResponse)
async def history(request: Request, rt: Runtime, signed: Learner) -> Response:
    try:
        async with services(request, rt, signed) as api:
            entries = await account_view.history(api, signed.account_id)
    except ApiError as error:
        return refusal(request, signed, error)
    return page(request, "learner/history.html", signed=signed, entries=entries)


@router.get("/enrolments/{enrolment_id}", response_class=HTMLResponse)
async def enrolment(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, signed: Learner
) -> Response:
    try:
        async with services(request, rt, signed) as api:
            view = await account_view.enrolment(api, enrolment_id)
    except ApiError as error:
        return refusal(request, signed, error)
    return page(request, "learner/enrolment.html", signed=signed, view=view)


@router.get("/credentials/{credential_id}/download")
async def download(
    credential_id: uuid.UUID, request: Request, rt: Runtime, signed: Learner
) -> Response:
    """The signed credential as issued, as a file (what an employer verifies)."""
    try:
        async with services(request, rt, signed) as api:
            found = await api.get(f"/v1/credentials/{credential_id}")
    except ApiError as error:
        return refusal(request, signed, error)
    return Response(
        json.dumps(found["credential"], indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="credential-{credential_id}.json"',
            "Cache-Control": "no-store",
        },
    )
