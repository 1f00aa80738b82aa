"""A provider's proposal to enrol a learner: what the read models must show for it to go
ahead, and the velocity rule that holds a provider enrolling too fast for an agency to
look at."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from services.payments.config import PaymentsConfig
from services.payments.domain.enrolments import Enrolment
from services.payments.domain.errors import Invalid, NotAllowed, PaymentsError, Unknown
from services.payments.domain.fees import credit_request, participation_fee
from services.payments.domain.views import (
    AccountView,
    CourseView,
    LotView,
    SessionView,
    eligible,
)


def check_proposal(
    *,
    provider_id: str,
    provider_status: str | None,
    account: AccountView | None,
    course: CourseView | None,
    session: SessionView | None,
    seats_taken: int,
    today: date,
) -> None:
    """Refuse an enrolment the read models show cannot go ahead."""
    if provider_status is None:
        raise NotAllowed("provider_unknown", f"provider {provider_id} is not registered")
    if not eligible(provider_status):
        raise NotAllowed(
            "provider_not_eligible", f"provider {provider_id} is {provider_status}: no enrolments"
        )
    if course is None:
        raise Unknown("course_not_found", "no such course")
    if course.provider_id != provider_id:
        raise NotAllowed("course_of_another_provider", "the course belongs to another provider")
    if course.status != "approved":
        raise Invalid("course_not_approved", f"the course is {course.status}, not approved")
    if session is None or session.course_id != course.course_id or session.withdrawn:
        raise Invalid("session_not_found", "no such session of this course")
    if session.ends_on < today:
        raise Invalid("session_ended", f"the session ended on {session.ends_on}")
    if seats_taken >= session.seats:
        raise PaymentsError("session_full", f"all {session.seats} seats of the session are taken")
    if account is None:
        raise Unknown("account_not_found", "no such account")
    if account.status != "active":
        raise Invalid("account_not_active", f"the account is {account.status}")


def velocity_exceeded(config: PaymentsConfig, enrolments_last_hour: int) -> bool:
    """Whether one more enrolment goes beyond the provider's hourly allowance."""
    return enrolments_last_hour + 1 > config.velocity_per_hour


def propose(
    config: PaymentsConfig,
    *,
    enrolment_id: uuid.UUID,
    provider_id: str,
    account: AccountView,
    course: CourseView,
    session: SessionView,
    lots: list[LotView],
    enrolments_last_hour: int,
    actor: str,
    now: datetime,
) -> Enrolment:
    """The proposal (checked by :func:`check_proposal`): the learner has to confirm it, or
    an agency has to release it first when the provider enrols too fast."""
    fee, exemption = participation_fee(config, account, course, lots, now)
    requested = credit_request(course.price, fee)
    held = velocity_exceeded(config, enrolments_last_hour)
    return Enrolment(
        enrolment_id=enrolment_id,
        account_id=account.account_id,
        provider_id=provider_id,
        course_id=course.course_id,
        course_version=course.version,
        session_id=session.session_id,
        starts_on=session.starts_on,
        ends_on=session.ends_on,
        ends_at=session.ends_at,
        price=course.price,
        status="held" if held else "awaiting_learner_confirmation",
        hold_reason="velocity" if held else None,
        participation_fee=fee,
        fee_exemption=exemption,
        requested=requested,
        co_payment=fee,
        proposed_by=actor,
        proposed_at=now,
        expires_at=None if held else now + config.confirmation_window,
        updated_at=now,
    )
