"""Course endpoints: a provider drafts, changes, submits and withdraws its own courses; an
agency approves or rejects; anyone authenticated reads.

Approval is scoped like accreditation: a course is approved or rejected by the agency that
registered its provider, or by ``qa`` (the national quality-assurance authority). Approval
is the eligibility of public training, but the price it approves is what learners' credit
pays: a clerk of another agency approving a course (an inflated price, say) of a provider
it does not answer for is the insider risk that scoping accreditation alone would leave
open, so the agency that answers for the provider answers for its courses. Another agency
gets the 404 a missing course gets. An agency's list (its review queue) holds the courses
of the providers it registered; ``qa``, auditors and admins list every course.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.commands import (
    Approval,
    CourseStep,
    CreateCourse,
    Rejection,
    UpdateCourse,
    Withdrawal,
)
from services.catalogue.deps import (
    Anyone,
    Assessor,
    CatalogueComponents,
    Components,
    Provider,
    Reader,
    Runtime,
    ctx_for,
    manages_provider,
    provider_uuid,
)
from services.catalogue.domain import courses as rules
from services.catalogue.domain.credentials.document import descriptor_elements
from services.catalogue.handlers import courses as handlers
from services.catalogue.store import courses as store
from services.catalogue.store import providers as provider_store
from shared.auth import Principal
from shared.idempotency import run_idempotent
from shared.links import follow
from shared.problems import Forbidden, NotFound
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/courses", tags=["courses"])
COURSE = "/v1/courses/{course_id}"
Status = Literal["draft", "submitted", "approved", "rejected", "withdrawn"]


class CoursePublic(BaseModel):
    course_id: uuid.UUID
    provider_id: uuid.UUID
    status: Status
    status_reason: str | None = Field(description="the last decision's reason code")
    status_note: str | None = Field(description="the last decision's free-text note")
    version: int
    currency: str
    content: dict[str, Any]
    micro_credential: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None


class CoursePage(BaseModel):
    items: list[CoursePublic]
    next: str | None


class VersionPublic(BaseModel):
    course_id: uuid.UUID
    version: int
    changed: list[str]
    created_by: str
    created_at: datetime
    content: dict[str, Any]


class HistoryEntry(BaseModel):
    version: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None = Field(description="the step's reason code")
    note: str | None
    at: datetime


def public(row: store.CourseRow, currency: str) -> CoursePublic:
    return CoursePublic(
        course_id=row.course_id,
        provider_id=row.provider_id,
        status=row.status,
        status_reason=row.status_reason,
        status_note=row.status_note,
        version=row.version,
        currency=currency,
        content=row.content,
        micro_credential=descriptor_elements(row.content, learner=None, issued_at=None, grade=None),
        created_at=row.created_at,
        updated_at=row.updated_at,
        approved_at=row.approved_at,
    )


async def _load(
    session: AsyncSession, course_id: uuid.UUID, *, lock: bool = False
) -> store.CourseRow:
    row = await store.get(session, course_id, lock=lock)
    if row is None:
        raise NotFound(f"no course {course_id}")
    return row


@router.post(
    "",
    status_code=201,
    response_model=CoursePublic,
    responses=follow(
        201,
        *(f"GET {COURSE}{part}" for part in ("", "/versions", "/versions/{version}", "/history")),
        f"PATCH {COURSE}",
        *(f"POST {COURSE}/{step}" for step in ("submit", "withdraw", "approve", "reject")),
        "GET /v1/public/courses/{course_id}",
        "GET /registry/courses/{course_id}",
    ),
)
async def create_course(
    body: CreateCourse, request: Request, rt: Runtime, parts: Components, principal: Provider
) -> Response:
    """Draft a course (version 1) with its classification, sessions and micro-credential
    descriptor; submit it for the agency's approval when ready."""
    provider_id = provider_uuid(principal)

    async def effect(session: AsyncSession) -> tuple[int, Any, dict[str, str]]:
        if await provider_store.get(session, provider_id) is None:
            raise Forbidden("the token's provider is not registered in the catalogue")
        ctx = parts.context(session, ctx_for(principal))
        course_id = await handlers.create(provider_id, body, ctx)
        row = await store.get(session, course_id)
        assert row is not None
        body_out = public(row, parts.config.currency).model_dump(mode="json")
        return 201, body_out, {"Location": f"/v1/courses/{course_id}"}

    # the request as sent: ids the server fills in (sessions without one) differ per call
    sent = body.model_dump(mode="json", exclude_unset=True)
    return await run_idempotent(rt, request, principal, sent, effect)


@router.get("", response_model=CoursePage)
async def list_courses(
    rt: Runtime,
    parts: Components,
    principal: Reader,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: uuid.UUID | None = None,
) -> CoursePage:
    """A provider's own courses; an agency's review queue (``?status=submitted``) or all
    the courses of the providers it registered; ``qa``, auditors and admins: every course."""
    provider = provider_uuid(principal) if principal.role == "provider" else None
    agency = principal.agency_id if principal.role == "agency" else None
    async with rt.sessions() as session:
        rows = await store.list_courses(session, provider, status, after, limit, agency)
    currency = parts.config.currency
    nxt = str(rows[-1].course_id) if len(rows) == limit else None
    return CoursePage(items=[public(r, currency) for r in rows], next=nxt)


@router.get("/{course_id}", response_model=CoursePublic)
async def get_course(
    course_id: uuid.UUID, rt: Runtime, parts: Components, principal: Anyone
) -> CoursePublic:
    """The course's current version and workflow status."""
    async with rt.sessions() as session:
        row = await _load(session, course_id)
    return public(row, parts.config.currency)


@router.get("/{course_id}/versions", response_model=list[VersionPublic])
async def list_versions(
    course_id: uuid.UUID, rt: Runtime, principal: Anyone
) -> list[VersionPublic]:
    """Every version of the course, oldest first, with the fields each one changed."""
    async with rt.sessions() as session:
        await _load(session, course_id)
        rows = await store.versions(session, course_id)
    return [VersionPublic(**vars(r)) for r in rows]


@router.get("/{course_id}/versions/{version}", response_model=VersionPublic)
async def get_version(
    course_id: uuid.UUID, version: int, rt: Runtime, principal: Anyone
) -> VersionPublic:
    """One version as it was (enrolments made on it keep it)."""
    async with rt.sessions() as session:
        row = await store.version(session, course_id, version)
    if row is None:
        raise NotFound(f"course {course_id} has no version {version}")
    return VersionPublic(**vars(row))


@router.get("/{course_id}/history", response_model=list[HistoryEntry])
async def get_history(course_id: uuid.UUID, rt: Runtime, principal: Anyone) -> list[HistoryEntry]:
    """Every workflow step: who, when, from which status to which, and why."""
    async with rt.sessions() as session:
        await _load(session, course_id)
        rows = await store.history(session, course_id)
    return [HistoryEntry(**r) for r in rows]


@router.patch(
    "/{course_id}",
    response_model=CoursePublic,
    responses=follow(200, f"GET {COURSE}/versions/{{version}}", f"POST {COURSE}/submit"),
)
async def update_course(
    course_id: uuid.UUID, body: UpdateCourse, rt: Runtime, parts: Components, principal: Provider
) -> CoursePublic:
    """Change fields: a new version. A price or content change of an approved course goes
    back to ``submitted`` for the agency's review; a course under review cannot change.
    A session added or moved must start after now (422 ``session_in_the_past``); a session
    with enrolments cannot be removed (409 ``session_has_enrolments``)."""
    async with rt.uow() as session:
        row = await _load(session, course_id, lock=True)
        rules.check_owner(row.domain(), principal.provider_id)
        await handlers.revise(row, body, parts.context(session, ctx_for(principal)))
        updated = await _load(session, course_id)
        return public(updated, parts.config.currency)


async def _act(
    course_id: uuid.UUID,
    step: CourseStep,
    rt: ServiceRuntime,
    parts: CatalogueComponents,
    principal: Principal,
) -> CoursePublic:
    async with rt.uow() as session:
        row = await _load(session, course_id, lock=True)
        if principal.role != "provider":
            provider = await provider_store.get(session, row.provider_id)
            assert provider is not None  # a foreign key holds it
            if not manages_provider(principal, provider.agency_id):
                raise NotFound(f"no course {course_id}")
        if principal.role == "provider":
            rules.check_owner(row.domain(), principal.provider_id)
        await handlers.act(row, step, parts.context(session, ctx_for(principal)))
        updated = await _load(session, course_id)
        return public(updated, parts.config.currency)


@router.post(
    "/{course_id}/submit",
    response_model=CoursePublic,
    responses=follow(200, f"POST {COURSE}/approve", f"POST {COURSE}/reject"),
)
async def submit(
    course_id: uuid.UUID, rt: Runtime, parts: Components, principal: Provider
) -> CoursePublic:
    """Ask an agency to approve the current version."""
    return await _act(course_id, CourseStep(action="submit"), rt, parts, principal)


@router.post("/{course_id}/withdraw", response_model=CoursePublic)
async def withdraw(
    course_id: uuid.UUID,
    rt: Runtime,
    parts: Components,
    principal: Provider,
    body: Withdrawal | None = None,
) -> CoursePublic:
    """Take the course off the registry (enrolments already made keep their version)."""
    step = CourseStep(
        action="withdraw",
        reason_code=body.reason_code if body else None,
        note=body.note if body else None,
    )
    return await _act(course_id, step, rt, parts, principal)


@router.post("/{course_id}/approve", response_model=CoursePublic)
async def approve(
    course_id: uuid.UUID, body: Approval, rt: Runtime, parts: Components, principal: Assessor
) -> CoursePublic:
    """Approve the submitted version: listed in the registry, fundable from the accounts.
    The agency that registered the provider, or ``qa``."""
    step = CourseStep(action="approve", reason_code=body.reason_code, note=body.note)
    return await _act(course_id, step, rt, parts, principal)


@router.post("/{course_id}/reject", response_model=CoursePublic)
async def reject(
    course_id: uuid.UUID, body: Rejection, rt: Runtime, parts: Components, principal: Assessor
) -> CoursePublic:
    """Reject the submitted version, with a reason code and the note the provider will read.
    The agency that registered the provider, or ``qa``."""
    step = CourseStep(action="reject", reason_code=body.reason_code, note=body.note)
    return await _act(course_id, step, rt, parts, principal)
