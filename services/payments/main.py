"""The payments service definition (enrolments, claims, payouts)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.service import ServiceDefinition

router = APIRouter(tags=["payments"])


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="payments", title="ILA payments", router=router)
