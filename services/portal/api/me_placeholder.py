"""A stand-in for the learner's pages at ``/me``, until they exist: it shows that the
person is signed in, and the sign-out form. The learner's pages replace this module."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.deps import templates
from services.portal.sessions import Learner

router = APIRouter(include_in_schema=False)


@router.get("/me")
async def me(request: Request, learner: Learner) -> Response:
    response = templates.TemplateResponse(
        request,
        "me_placeholder.html",
        {
            "account_id": learner.account_id,
            "csrf": learner.csrf_token,
            "currency": request.app.state.settings.currency,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response
