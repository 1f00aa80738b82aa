"""The catalogue's read models fed by other services' events.

- ``catalogue.accounts``: the agency managing each account, from ``AccountOpened`` and
  ``AccountTransferred``; an agency reads and revokes only the credentials of its accounts.
- ``catalogue.session_enrolments``: an enrolment holds a seat in its session from
  ``EnrolmentConfirmed`` until ``EnrolmentCancelled`` or ``EnrolmentRejected``; a completed
  enrolment keeps it (the training was given). A session with a live enrolment cannot be
  removed from its course.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.store import views
from shared.events.accounts import AccountOpened, AccountTransferred
from shared.events.payments import EnrolmentCancelled, EnrolmentConfirmed, EnrolmentRejected

AccountEvent = AccountOpened | AccountTransferred
EnrolmentEvent = EnrolmentConfirmed | EnrolmentCancelled | EnrolmentRejected


async def apply_account_event(session: AsyncSession, event: AccountEvent) -> None:
    match event:
        case AccountOpened():
            await views.set_account_agency(session, event.account_id, event.agency_id)
        case AccountTransferred():
            await views.set_account_agency(session, event.account_id, event.to_agency_id)


async def apply_enrolment_event(session: AsyncSession, event: EnrolmentEvent) -> None:
    """A confirmation holds the seat; a cancellation or a rejection frees it."""
    live = isinstance(event, EnrolmentConfirmed)
    await views.set_seat(session, event.enrolment_id, event.course_id, event.session_id, live=live)
