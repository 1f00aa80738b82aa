"""The catalogue's HTTP surface: one router made of the per-resource routers."""

from __future__ import annotations

from fastapi import APIRouter

from services.catalogue.api import (
    courses,
    credentials,
    providers,
    public,
    registry,
    verify_page,
)


def build_router() -> APIRouter:
    router = APIRouter()
    for module in (providers, courses, public, registry, verify_page, credentials):
        router.include_router(module.router)
    return router
