"""Validations of prior learning: the provider of an enrolment in a course of kind
``validation`` records what it validated, once; the catalogue issues the validation's own
credential (Open Badges 3 and the European Learning Model, signed by the current issuer
key, with an entry in a status list) and says so in events that carry ids, codes and
numbers only."""

from __future__ import annotations

import uuid

from services.catalogue.commands import RecordValidation
from services.catalogue.domain.credentials.validation import Validation, build_elm, build_ob3
from services.catalogue.domain.errors import CatalogueError, conflict
from services.catalogue.handlers import Context
from services.catalogue.handlers.credentials import issuing
from services.catalogue.store import courses as course_store
from services.catalogue.store import credentials as credential_store
from services.catalogue.store import providers as provider_store
from services.catalogue.store import validations as store
from services.catalogue.store import views
from shared.events.catalogue import PriorLearningValidated


def _not_found(enrolment_id: uuid.UUID) -> CatalogueError:
    return CatalogueError("not_found", "enrolment_not_found", f"no enrolment {enrolment_id}")


async def record(
    provider_id: uuid.UUID, cmd: RecordValidation, ctx: Context
) -> tuple[store.ValidationRow, bool]:
    """The validation of the enrolment, and whether it was recorded now (asking again
    answers the one recorded). Another provider's enrolment, or one the catalogue does not
    know: 404; a course of another kind: 409 ``not_a_validation_enrolment``; an enrolment
    cancelled or rejected: 409 ``enrolment_not_under_way``."""
    session, now = ctx.session, ctx.now
    enrolment = await views.enrolment(session, cmd.enrolment_id)
    if enrolment is None or enrolment.provider_id != str(provider_id):
        raise _not_found(cmd.enrolment_id)
    existing = await store.by_enrolment(session, cmd.enrolment_id)
    if existing is not None:
        return existing, False
    course = await course_store.get(session, enrolment.course_id)
    if course is None or course.content.get("kind") != "validation":
        raise conflict(
            "not_a_validation_enrolment",
            f"enrolment {cmd.enrolment_id} is not in a course of kind validation",
        )
    if not enrolment.live:
        raise conflict("enrolment_not_under_way", "the enrolment was cancelled or rejected")
    assert enrolment.account_id is not None  # a live enrolment's learner is known
    provider = await provider_store.get(session, provider_id)
    assert provider is not None
    validation = Validation(
        validation_id=uuid.uuid4(),
        enrolment_id=cmd.enrolment_id,
        account_id=enrolment.account_id,
        learning_outcomes=tuple(cmd.learning_outcomes),
        eqf_level=cmd.eqf_level,
        method=cmd.assessment.method,
        assessed_on=cmd.assessment.assessed_on,
        assessor_body=cmd.assessment.assessor_body,
    )
    new = await issuing(
        ctx,
        course_id=course.course_id,
        course_version=course.version,
        content=course.content,
        provider_id=provider_id,
        provider_name=provider.name,
        enrolment_id=cmd.enrolment_id,
        account_id=enrolment.account_id,
    )
    forms = build_ob3(new.facts, validation), build_elm(new.facts, validation)
    if not await credential_store.insert(session, new.row(*forms, "validation")):
        # a credential of this enrolment exists (issued before validations)
        raise conflict("credential_exists", "a credential was issued for this enrolment already")
    credential_id = new.facts.credential_id
    await store.insert(
        session,
        {
            "validation_id": validation.validation_id,
            "enrolment_id": cmd.enrolment_id,
            "account_id": enrolment.account_id,
            "provider_id": provider_id,
            "course_id": course.course_id,
            "course_version": course.version,
            "learning_outcomes": list(cmd.learning_outcomes),
            "eqf_level": cmd.eqf_level,
            "method": cmd.assessment.method,
            "assessed_on": cmd.assessment.assessed_on,
            "assessor_body": cmd.assessment.assessor_body,
            "credential_id": credential_id,
            "recorded_at": now,
            "recorded_by": ctx.actor,
        },
    )
    await ctx.emit(
        new.event(),
        PriorLearningValidated(
            credential_id=credential_id,
            account_id=enrolment.account_id,
            validation_id=validation.validation_id,
            enrolment_id=cmd.enrolment_id,
            course_id=course.course_id,
            provider_id=str(provider_id),
            eqf_level=cmd.eqf_level,
            outcomes=len(cmd.learning_outcomes),
            method=cmd.assessment.method,
            assessed_on=cmd.assessment.assessed_on,
            validated_at=now,
        ),
    )
    recorded = await store.get(session, validation.validation_id)
    assert recorded is not None
    return recorded, True
