"""SQL of guidance plans: the plan of a guidance enrolment, the enrolments that followed a
plan."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.enrolments import Enrolment
from services.payments.domain.guidance import GuidancePlan
from services.payments.store.rows import many, one


async def plan_of(session: AsyncSession, enrolment_id: uuid.UUID) -> GuidancePlan | None:
    """The plan recorded for the guidance enrolment, if any."""
    sql = "SELECT * FROM payments.guidance_plans WHERE enrolment_id = :e"
    return await one(session, GuidancePlan, sql, {"e": enrolment_id})


async def followed_by(session: AsyncSession, plan_id: uuid.UUID) -> list[Enrolment]:
    """The enrolments that name the plan, oldest first."""
    sql = (
        "SELECT * FROM payments.enrolments WHERE guidance_plan_id = :p "
        "ORDER BY proposed_at, enrolment_id"
    )
    return await many(session, Enrolment, sql, {"p": plan_id})
