"""HTTP endpoints of payments: thin routers that parse, authorize, call a handler and shape
the reply."""

from __future__ import annotations

from fastapi import APIRouter

from services.payments.api import (
    claims,
    enrolments,
    guidance,
    leave,
    payees,
    payouts,
    statistics,
)
from shared.approvals_api import approvals_router

router = APIRouter()
router.include_router(enrolments.router)
router.include_router(guidance.router)
router.include_router(claims.router)
router.include_router(payouts.router)
router.include_router(payees.router)
router.include_router(leave.router)
router.include_router(statistics.router)
router.include_router(approvals_router("payments", "/v1/payments"))

__all__ = ["router"]
