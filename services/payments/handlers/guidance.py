"""Guidance outcomes: the provider of a guidance enrolment records the plan it led to
(once: asking again answers the plan recorded), and the enrolments that follow it."""

from __future__ import annotations

import uuid

from services.payments.commands import RecordGuidanceOutcome
from services.payments.domain import guidance
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.guidance import GuidancePlan
from services.payments.handlers import Context
from services.payments.store import guidance as store
from services.payments.store import read_models, rows


async def record(
    enrolment: Enrolment, cmd: RecordGuidanceOutcome, ctx: Context
) -> tuple[GuidancePlan, bool]:
    """The plan of the (locked) enrolment, and whether it was recorded now."""
    existing = await store.plan_of(ctx.session, enrolment.enrolment_id)
    if existing is not None:
        return existing, False
    course = await read_models.course(ctx.session, enrolment.course_id)
    plan, events = guidance.record(
        enrolment,
        course.kind if course else None,
        plan_id=uuid.uuid4(),
        course_ids=list(cmd.courses),
        skills=[s.model_dump(exclude_none=True) for s in cmd.skills],
        note=cmd.note,
        actor=ctx.actor,
        now=ctx.now,
    )
    await rows.insert(ctx.session, plan)
    await ctx.emit(*events)
    return plan, True
