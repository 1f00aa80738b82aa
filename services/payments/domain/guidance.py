"""Guidance plans (pure): the outcome of a guidance session, recorded by the provider of
the enrolment, and the rule that a later enrolment may name only a plan of its own learner.

A plan names courses (catalogue ids) and skills (an ESCO-like URI and a label); the labels
and the provider's note are free text, kept in payments' table and never in an event (the
event carries the course ids and how many skills).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.payments.domain.enrolments import Enrolment, EnrolmentStatus
from services.payments.domain.errors import Invalid, PaymentsError
from shared.events.payments import GuidancePlanFollowed, GuidancePlanRecorded

# a guidance session in progress (the learner holds a seat) or given
UNDER_WAY: tuple[EnrolmentStatus, ...] = ("confirmed", "completed")


@dataclass(frozen=True)
class GuidancePlan:
    """A plan as stored (one row of ``payments.guidance_plans``)."""

    plan_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    course_ids: list[uuid.UUID]
    skills: list[dict[str, Any]]
    note: str | None
    recorded_by: str
    recorded_at: datetime


def record(
    enrolment: Enrolment,
    course_kind: str | None,
    *,
    plan_id: uuid.UUID,
    course_ids: list[uuid.UUID],
    skills: list[dict[str, Any]],
    note: str | None,
    actor: str,
    now: datetime,
) -> tuple[GuidancePlan, list[GuidancePlanRecorded]]:
    """The plan of a guidance enrolment under way, and its event."""
    if course_kind != "guidance":
        raise PaymentsError(
            "not_a_guidance_enrolment",
            f"enrolment {enrolment.enrolment_id} is not in a course of kind guidance",
        )
    if enrolment.status not in UNDER_WAY:
        raise PaymentsError(
            "enrolment_not_under_way",
            f"a guidance outcome is recorded for a confirmed or completed enrolment, "
            f"not a {enrolment.status} one",
        )
    if not course_ids and not skills:
        raise Invalid("empty_guidance_plan", "a plan names at least one course or skill")
    plan = GuidancePlan(
        plan_id=plan_id,
        enrolment_id=enrolment.enrolment_id,
        account_id=enrolment.account_id,
        provider_id=enrolment.provider_id,
        course_ids=list(dict.fromkeys(course_ids)),
        skills=skills,
        note=note,
        recorded_by=actor,
        recorded_at=now,
    )
    event = GuidancePlanRecorded(
        plan_id=plan.plan_id,
        account_id=plan.account_id,
        enrolment_id=plan.enrolment_id,
        provider_id=plan.provider_id,
        course_ids=tuple(plan.course_ids),
        skills=len(skills),
        recorded_at=now,
    )
    return plan, [event]


def follow(plan: GuidancePlan | None, plan_id: uuid.UUID, enrolment: Enrolment) -> list[Any]:
    """The event of ``enrolment`` naming the plan that led to it; refused when the plan is
    unknown or another learner's (the same answer for both)."""
    if plan is None or plan.account_id != enrolment.account_id:
        raise Invalid(
            "guidance_plan_not_found",
            f"no guidance plan {plan_id} for this learner",
            field="guidance_plan_id",
        )
    return [
        GuidancePlanFollowed(
            plan_id=plan.plan_id,
            account_id=enrolment.account_id,
            enrolment_id=enrolment.enrolment_id,
            provider_id=enrolment.provider_id,
            course_id=enrolment.course_id,
        )
    ]
