"""Courses: drafting, the eligibility workflow and new versions."""

from __future__ import annotations

import uuid
from typing import Any

from services.catalogue.commands import CourseStep, CreateCourse, UpdateCourse
from services.catalogue.domain import courses as domain
from services.catalogue.domain import providers as provider_rules
from services.catalogue.domain.errors import conflict
from services.catalogue.handlers import Context
from services.catalogue.store import courses as store
from services.catalogue.store import providers as provider_store
from services.catalogue.store import views
from shared.events.catalogue import (
    CourseApproved,
    CourseRejected,
    CourseSubmitted,
    CourseUpdated,
    CourseWithdrawn,
    SessionInfo,
)


def terms(content: dict[str, Any], currency: str) -> dict[str, Any]:
    """The fields of a course event that enrolments and earmarks use."""
    return {
        "kind": content["kind"],
        "title": content["title"],
        "price": content["price"],
        "currency": currency,
        "sessions": tuple(SessionInfo.model_validate(s) for s in content["sessions"]),
        "isced_field": content["isced_field"],
        "eqf_level": content["eqf_level"],
        "tags": tuple(content.get("tags") or ()),
        "mode": content["mode"],
        "region": content["region"],
        "workload_hours": content["workload_hours"],
    }


async def create(provider_id: uuid.UUID, cmd: CreateCourse, ctx: Context) -> uuid.UUID:
    """A draft (version 1) of the provider's; nothing is published until it is submitted."""
    course_id = uuid.uuid4()
    content = cmd.model_dump(mode="json")
    await store.insert(ctx.session, course_id, provider_id, content, ctx.actor, ctx.now)
    await store.record(ctx.session, course_id, 1, "create", None, "draft", ctx.actor, None)
    return course_id


async def act(row: store.CourseRow, cmd: CourseStep, ctx: Context) -> domain.CourseStatus:
    """One workflow step on the (locked) course."""
    action, code, note = cmd.action, cmd.reason_code, cmd.note
    target = domain.transition(row.domain(), action)
    if action == "approve":
        await _check_provider_eligible(row.provider_id, ctx)
    await store.set_status(ctx.session, row.course_id, target, code, ctx.now, note)
    await store.record(
        ctx.session, row.course_id, row.version, action, row.status, target, ctx.actor, code, note
    )
    base = {"course_id": row.course_id, "version": row.version, "provider_id": str(row.provider_id)}
    event: CourseSubmitted | CourseApproved | CourseRejected | CourseWithdrawn
    if action == "submit":
        event = CourseSubmitted(**base)
    elif action == "approve":
        terms_ = terms(row.content, ctx.config.currency)
        event = CourseApproved(**base, **terms_, approved_by=ctx.actor, approved_at=ctx.now)
    elif action == "reject":
        event = CourseRejected.model_validate({**base, "reason_code": code})
    else:
        event = CourseWithdrawn.model_validate({**base, "reason_code": code})
    await ctx.emit(event)
    return target


async def _check_provider_eligible(provider_id: uuid.UUID, ctx: Context) -> None:
    provider = await provider_store.get(ctx.session, provider_id)
    assert provider is not None  # a foreign key holds it
    why = provider_rules.ineligibility(provider.domain(), ctx.now.date())
    if why is not None:
        raise conflict(
            "provider_ineligible", f"the provider is not eligible ({why.replace('_', ' ')})"
        )


async def revise(row: store.CourseRow, cmd: UpdateCourse, ctx: Context) -> domain.Revision | None:
    """A new version of the (locked) course with the given fields changed, or None when
    nothing differs. Sessions are never moved into the past, and a session with enrolments
    is never removed."""
    changes = cmd.model_dump(mode="json", exclude_unset=True)
    revision = domain.revise(row.domain(), row.content, changes)
    if revision is None:
        return None
    if "sessions" in revision.changed:
        dropped = domain.removed_sessions(row.content, revision.content)
        enrolled = await views.sessions_with_enrolments(
            ctx.session, row.course_id, (uuid.UUID(i) for i in dropped)
        )
        domain.check_sessions(
            row.content["sessions"], revision.content["sessions"], ctx.now, enrolled
        )
    await store.apply_revision(
        ctx.session,
        row.course_id,
        revision.version,
        revision.status,
        revision.content,
        revision.changed,
        ctx.actor,
        ctx.now,
    )
    await store.record(
        ctx.session,
        row.course_id,
        revision.version,
        "revise",
        row.status,
        revision.status,
        ctx.actor,
        "changed: " + ", ".join(revision.changed),
    )
    await ctx.emit(
        CourseUpdated(
            course_id=row.course_id,
            version=revision.version,
            provider_id=str(row.provider_id),
            previous_version=row.version,
            status=revision.status,
            changed=revision.changed,
            **terms(revision.content, ctx.config.currency),
        )
    )
    return revision
