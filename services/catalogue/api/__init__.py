"""The catalogue's HTTP surface: one router made of the per-resource routers."""

from __future__ import annotations

from fastapi import APIRouter

from services.catalogue.api import (
    courses,
    credentials,
    issuer,
    providers,
    public,
    registry,
    validations,
    verify_page,
)
from shared.approvals_api import approvals_router


def build_router() -> APIRouter:
    router = APIRouter()
    for module in (
        providers,
        courses,
        public,
        registry,
        verify_page,
        issuer,
        credentials,
        validations,
    ):
        router.include_router(module.router)
    # revoking an issuer key: qa proposes, an admin approves
    router.include_router(approvals_router("catalogue", "/v1/catalogue", approvers=("admin",)))
    return router
