"""Courses: drafting, the eligibility workflow and new versions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.commands import CreateCourse, UpdateCourse
from services.catalogue.domain import courses as domain
from services.catalogue.domain import providers as provider_rules
from services.catalogue.domain.errors import conflict
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
from shared.outbox import EventContext, Outbox


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


async def create(
    session: AsyncSession, provider_id: uuid.UUID, cmd: CreateCourse, actor: str, now: datetime
) -> uuid.UUID:
    """A draft (version 1); nothing is published until it is submitted."""
    course_id = uuid.uuid4()
    content = cmd.model_dump(mode="json")
    await store.insert(session, course_id, provider_id, content, actor, now)
    await store.record(session, course_id, 1, "create", None, "draft", actor, None)
    return course_id


async def act(
    session: AsyncSession,
    outbox: Outbox,
    row: store.CourseRow,
    action: domain.Action,
    reason: str | None,
    actor: str,
    ctx: EventContext,
    now: datetime,
    currency: str,
) -> domain.CourseStatus:
    """One workflow step (who may take it is checked by the caller)."""
    course = row.domain()
    target = domain.transition(course, action)
    if action == "approve":
        await _check_provider_eligible(session, row.provider_id, now.date())
    await store.set_status(session, row.course_id, target, reason, now)
    await store.record(
        session, row.course_id, row.version, action, row.status, target, actor, reason
    )
    base = {"course_id": row.course_id, "version": row.version, "provider_id": str(row.provider_id)}
    event: CourseSubmitted | CourseApproved | CourseRejected | CourseWithdrawn
    if action == "submit":
        event = CourseSubmitted(**base)
    elif action == "approve":
        event = CourseApproved(
            **base, **terms(row.content, currency), approved_by=actor, approved_at=now
        )
    elif action == "reject":
        event = CourseRejected(**base, reason=reason or "")
    else:
        event = CourseWithdrawn(**base, reason=reason)
    await outbox.add(session, [event], ctx)
    return target


async def _check_provider_eligible(
    session: AsyncSession, provider_id: uuid.UUID, today: date
) -> None:
    provider = await provider_store.get(session, provider_id)
    assert provider is not None  # a foreign key holds it
    why = provider_rules.ineligibility(provider.domain(), today)
    if why is not None:
        raise conflict(
            "provider_ineligible", f"the provider is not eligible ({why.replace('_', ' ')})"
        )


async def revise(
    session: AsyncSession,
    outbox: Outbox,
    row: store.CourseRow,
    cmd: UpdateCourse,
    actor: str,
    ctx: EventContext,
    now: datetime,
    currency: str,
) -> domain.Revision | None:
    """A new version with the given fields changed, or None when nothing differs. Sessions
    are never moved into the past, and a session with enrolments is never removed."""
    changes = cmd.model_dump(mode="json", exclude_unset=True)
    revision = domain.revise(row.domain(), row.content, changes)
    if revision is None:
        return None
    if "sessions" in revision.changed:
        dropped = domain.removed_sessions(row.content, revision.content)
        enrolled = await views.sessions_with_enrolments(
            session, row.course_id, (uuid.UUID(i) for i in dropped)
        )
        domain.check_sessions(row.content["sessions"], revision.content["sessions"], now, enrolled)
    await store.apply_revision(
        session,
        row.course_id,
        revision.version,
        revision.status,
        revision.content,
        revision.changed,
        actor,
        now,
    )
    await store.record(
        session,
        row.course_id,
        revision.version,
        "revise",
        row.status,
        revision.status,
        actor,
        "changed: " + ", ".join(revision.changed),
    )
    await outbox.add(
        session,
        [
            CourseUpdated(
                course_id=row.course_id,
                version=revision.version,
                provider_id=str(row.provider_id),
                previous_version=row.version,
                status=revision.status,
                changed=revision.changed,
                **terms(revision.content, currency),
            )
        ],
        ctx,
    )
    return revision
