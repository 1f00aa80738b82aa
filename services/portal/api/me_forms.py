"""The learner's answers, sent as plain HTML forms (no JavaScript needed): confirm or refuse
a proposal, confirm or contest a claim.

Each form carries the session's CSRF token; the handler checks it, asks the service's API
as the learner, then redirects (303) to ``/me`` with a message shown once. A refusal by
the service shows a page that says why, with the service's 4xx status; a stale form is a
403 page; nothing changes in either case.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal import flash
from services.portal.api import account_view
from services.portal.api.me import refusal, services
from services.portal.api.render import CONTEST_REASONS, page
from services.portal.client import ApiError, ServiceApi
from services.portal.deps import Components, Runtime
from services.portal.sessions import SignedIn, SignInRequired, check_csrf, signed_in
from shared.i18n import N_
from shared.problems import Forbidden

router = APIRouter(prefix="/me", tags=["learner pages"])
Csrf = Annotated[str | None, Form(max_length=200)]


async def form_signed_in(request: Request, rt: Runtime, components: Components) -> SignedIn:
    """The person signed in, or a redirect to the sign-in that comes back to ``/me`` (the
    form itself cannot be sent again by a redirect)."""
    try:
        return await signed_in(request, rt, components)
    except SignInRequired:
        raise SignInRequired("/me") from None


FormLearner = Annotated[SignedIn, Depends(form_signed_in)]
Act = Callable[[ServiceApi], Awaitable[str]]  # calls the API, answers the course's title


async def answer(
    request: Request, rt: Runtime, signed: SignedIn, csrf: str | None, message: str, act: Act
) -> Response:
    try:
        check_csrf(signed, csrf)
    except Forbidden:
        return page(
            request,
            "learner/problem.html",
            status_code=403,
            signed=signed,
            plain=N_(
                "This form is out of date or was not sent from this site. Nothing was "
                "changed. Please go back to your account and try again."
            ),
            detail=None,
            code="stale_form",
        )
    try:
        async with services(request, rt, signed) as api:
            title = await act(api)
    except ApiError as error:
        return refusal(request, signed, error)
    await flash.put(rt, signed, message, course=title)
    return RedirectResponse("/me", status_code=303)


async def title_of(api: ServiceApi, enrolment: dict[str, Any]) -> str:
    found = await account_view.course(
        api, str(enrolment["course_id"]), str(enrolment["provider_id"])
    )
    return found.title


@router.post("/enrolments/{enrolment_id}/confirm", response_class=HTMLResponse)
async def confirm(
    enrolment_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    signed: FormLearner,
    csrf: Csrf = None,
    accept_co_payment: Annotated[bool, Form()] = False,
) -> Response:
    """Consent to a proposal (with ``accept_co_payment`` when the account covers part of
    the price and the learner pays the rest)."""

    async def act(api: ServiceApi) -> str:
        # one key per answer: a form sent twice is one consent
        key = f"portal-confirm-{enrolment_id}-{int(accept_co_payment)}"
        enrolment = await api.post(
            f"/v1/enrolments/{enrolment_id}/confirm",
            json={"accept_co_payment": accept_co_payment},
            headers={"Idempotency-Key": key},
        )
        return await title_of(api, enrolment)

    return await answer(request, rt, signed, csrf, "confirmed", act)


@router.post("/enrolments/{enrolment_id}/refuse", response_class=HTMLResponse)
async def refuse(
    enrolment_id: uuid.UUID, request: Request, rt: Runtime, signed: FormLearner, csrf: Csrf = None
) -> Response:
    """Refuse a proposal: nothing is reserved, the seat is free again."""

    async def act(api: ServiceApi) -> str:
        enrolment = await api.post(f"/v1/enrolments/{enrolment_id}/refuse")
        return await title_of(api, enrolment)

    return await answer(request, rt, signed, csrf, "refused", act)


@router.post("/claims/{claim_id}/attest", response_class=HTMLResponse)
async def attest(
    claim_id: uuid.UUID, request: Request, rt: Runtime, signed: FormLearner, csrf: Csrf = None
) -> Response:
    """The learner says the training was given."""

    async def act(api: ServiceApi) -> str:
        claim = await api.post(f"/v1/claims/{claim_id}/attest")
        return await title_of(api, await api.get(f"/v1/enrolments/{claim['enrolment_id']}"))

    return await answer(request, rt, signed, csrf, "attested", act)


@router.post("/claims/{claim_id}/contest", response_class=HTMLResponse)
async def contest(
    claim_id: uuid.UUID,
    request: Request,
    rt: Runtime,
    signed: FormLearner,
    csrf: Csrf = None,
    reason_code: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    """Contest a claim with a reason code: the claim is held, never paid, until the agency
    has looked into it."""

    async def act(api: ServiceApi) -> str:
        if reason_code not in CONTEST_REASONS:
            raise ApiError(
                422, {"code": "reason_required", "detail": "choose why you contest the claim"}
            )
        claim = await api.post(f"/v1/claims/{claim_id}/contest", json={"reason_code": reason_code})
        return await title_of(api, await api.get(f"/v1/enrolments/{claim['enrolment_id']}"))

    return await answer(request, rt, signed, csrf, "contested", act)
