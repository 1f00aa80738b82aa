"""The catalogue service definition (providers, courses, registry, credentials)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.service import ServiceDefinition

router = APIRouter(tags=["catalogue"])


def definition() -> ServiceDefinition:
    return ServiceDefinition(name="catalogue", title="ILA catalogue", router=router)
