"""The portal's pages, one module per audience."""

from __future__ import annotations

from types import ModuleType

from fastapi import APIRouter

from services.portal.api import dashboard, me, me_forms, sign_in

# learner pages (sign-in, /me) and the dashboard, each a module with a ``router``
PAGES: tuple[ModuleType, ...] = (sign_in, me, me_forms, dashboard)


def build_router() -> APIRouter:
    router = APIRouter()
    for module in PAGES:
        router.include_router(module.router)
    return router
