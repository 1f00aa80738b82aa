"""Validations of prior learning, and the catalogue's monitoring statistics.

- ``POST /v1/validations``: the provider of an enrolment in a course of kind ``validation``
  records what it validated (the learning outcomes, their EQF level, the assessment); the
  catalogue issues the validation's credential (``GET /v1/credentials/{id}``, both formats,
  verified by ``POST /v1/credentials/verify`` and ``/verify``). Once per enrolment: asking
  again answers the validation recorded (200).
- ``GET /v1/validations/{id}``: for its learner, its provider, the agency that manages the
  learner's account and national roles (anyone else: 404).
- ``GET /v1/catalogue/statistics?year=``: the validations recorded month by month, by EQF
  level; national roles see the country, an agency the accounts it manages.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.catalogue.commands import RecordValidation
from services.catalogue.deps import (
    Components,
    Holder,
    Provider,
    Runtime,
    ctx_for,
    provider_uuid,
    reads_record,
)
from services.catalogue.handlers import validations as handlers
from services.catalogue.store import validations as store
from shared.auth import Principal, require
from shared.problems import NotFound

router = APIRouter(tags=["validations"])

StatisticsReader = Annotated[Principal, Depends(require("agency", "auditor", "admin"))]


class AssessmentPublic(BaseModel):
    method: str
    assessed_on: date
    assessor_body: str


class ValidationPublic(BaseModel):
    validation_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: uuid.UUID
    course_id: uuid.UUID
    course_version: int
    learning_outcomes: list[str]
    eqf_level: int
    assessment: AssessmentPublic
    credential_id: uuid.UUID
    recorded_at: datetime
    # the credential it issued (``?format=elm``: the European Learning Model form)
    credential: str


def public(row: store.ValidationRow) -> ValidationPublic:
    return ValidationPublic(
        validation_id=row.validation_id,
        enrolment_id=row.enrolment_id,
        account_id=row.account_id,
        provider_id=row.provider_id,
        course_id=row.course_id,
        course_version=row.course_version,
        learning_outcomes=list(row.learning_outcomes),
        eqf_level=row.eqf_level,
        assessment=AssessmentPublic(
            method=row.method, assessed_on=row.assessed_on, assessor_body=row.assessor_body
        ),
        credential_id=row.credential_id,
        recorded_at=row.recorded_at,
        credential=f"/v1/credentials/{row.credential_id}",
    )


@router.post(
    "/v1/validations",
    status_code=201,
    response_model=ValidationPublic,
    responses={200: {"description": "the validation recorded before", "model": ValidationPublic}},
)
async def record_validation(
    cmd: RecordValidation, rt: Runtime, parts: Components, principal: Provider
) -> Any:
    """Record a validation of prior learning and issue its credential (201); the same
    enrolment again: the validation recorded (200). 404 for an enrolment that is not the
    provider's; 409 ``not_a_validation_enrolment`` for a course of another kind,
    ``enrolment_not_under_way`` for a cancelled or rejected enrolment."""
    provider_id = provider_uuid(principal)
    async with rt.uow() as session:
        row, created = await handlers.record(
            provider_id, cmd, parts.context(session, ctx_for(principal))
        )
    return JSONResponse(
        public(row).model_dump(mode="json"),
        status_code=201 if created else 200,
        headers={"Location": f"/v1/validations/{row.validation_id}"},
    )


@router.get("/v1/validations/{validation_id}", response_model=ValidationPublic)
async def get_validation(
    validation_id: uuid.UUID, rt: Runtime, principal: Holder
) -> ValidationPublic:
    """The validation: for its learner, its provider, the agency that manages the learner's
    account and national roles."""
    async with rt.sessions() as session:
        row = await store.get(session, validation_id)
        if row is None or not await reads_record(session, principal, row):
            raise NotFound(f"no validation {validation_id}")
    return public(row)


@router.get("/v1/catalogue/statistics")
async def catalogue_statistics(
    rt: Runtime,
    parts: Components,
    principal: StatisticsReader,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")] = None,
) -> dict[str, Any]:
    """Month by month in ``year``: the ``validations`` of prior learning recorded, in total
    and ``by_eqf_level`` (``"1"`` to ``"8"``); an agency counts the accounts it manages."""
    now = parts.clock.now()
    year = year or now.year
    scope = principal.agency_id if principal.role == "agency" else None
    async with rt.sessions() as session:
        figures = await store.yearly(session, year, scope)
    return {"year": year, "agency_id": scope, **figures, "generated_at": now.isoformat()}
