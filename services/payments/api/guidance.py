"""Guidance outcomes: the provider of a guidance enrolment records the plan the session led
to; later enrolments of the same learner name it (``guidance_plan_id`` on
``POST /v1/enrolments``), and the plan is read with the enrolments that followed it.

Who: the enrolment's provider records (anyone else: the 404 of a missing enrolment); the
plan is read by its learner, its provider, the agency that manages the learner's account
and national roles (anyone else: 404).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.payments import deps
from services.payments.commands import RecordGuidanceOutcome
from services.payments.deps import Provider, Runtime, ScopedReader
from services.payments.domain.enrolments import Enrolment, EnrolmentStatus
from services.payments.domain.guidance import GuidancePlan
from services.payments.handlers import guidance
from services.payments.store import guidance as store
from services.payments.store import rows

router = APIRouter(tags=["guidance"])


class FollowingEnrolment(BaseModel):
    enrolment_id: uuid.UUID
    provider_id: str
    course_id: uuid.UUID
    starts_on: date
    status: EnrolmentStatus
    proposed_at: datetime


class GuidancePlanPublic(BaseModel):
    plan_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    courses: list[uuid.UUID]
    skills: list[dict[str, str]]
    note: str | None
    recorded_at: datetime
    # the enrolments that name this plan, oldest first
    enrolments: list[FollowingEnrolment]


def public(plan: GuidancePlan, following: list[Enrolment]) -> GuidancePlanPublic:
    return GuidancePlanPublic(
        plan_id=plan.plan_id,
        enrolment_id=plan.enrolment_id,
        account_id=plan.account_id,
        provider_id=plan.provider_id,
        courses=list(plan.course_ids),
        skills=list(plan.skills),
        note=plan.note,
        recorded_at=plan.recorded_at,
        enrolments=[
            FollowingEnrolment(
                enrolment_id=e.enrolment_id,
                provider_id=e.provider_id,
                course_id=e.course_id,
                starts_on=e.starts_on,
                status=e.status,
                proposed_at=e.proposed_at,
            )
            for e in following
        ],
    )


@router.post(
    "/v1/enrolments/{enrolment_id}/guidance-outcome",
    status_code=201,
    response_model=GuidancePlanPublic,
    responses={200: {"description": "the plan recorded before", "model": GuidancePlanPublic}},
)
async def record_guidance_outcome(
    enrolment_id: uuid.UUID, cmd: RecordGuidanceOutcome, rt: Runtime, principal: Provider
) -> Any:
    """The provider of a guidance enrolment (confirmed or completed) records the plan the
    session led to: 201 with the plan and its id; once recorded, asking again answers it
    (200). 409 ``not_a_guidance_enrolment`` for a course of another kind,
    ``enrolment_not_under_way`` for an enrolment not confirmed nor completed."""
    async with rt.uow() as session:
        enrolment = await deps.load_scoped(session, principal, Enrolment, enrolment_id, lock=True)
        plan, created = await guidance.record(enrolment, cmd, deps.context(rt, session, principal))
        following = await store.followed_by(session, plan.plan_id)
    body = public(plan, following).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=201 if created else 200,
        headers={"Location": f"/v1/guidance-plans/{plan.plan_id}"},
    )


@router.get("/v1/guidance-plans/{plan_id}", response_model=GuidancePlanPublic)
async def get_guidance_plan(
    plan_id: uuid.UUID, rt: Runtime, principal: ScopedReader
) -> GuidancePlanPublic:
    """The plan with the enrolments that followed it: for its learner, its provider, the
    agency that manages the learner's account and national roles."""
    async with rt.sessions() as session:
        found = await rows.get(session, GuidancePlan, plan_id)
        plan = await deps.scoped(session, principal, found, "guidance_plan", plan_id)
        following = await store.followed_by(session, plan_id)
    return public(plan, following)
