"""The catalogue's read models fed by other services' events.

- ``catalogue.accounts``: the agency managing each account, from ``AccountOpened`` and
  ``AccountTransferred``; an agency reads and revokes only the credentials of its accounts.
- ``catalogue.session_enrolments``: an enrolment holds a seat in its session from
  ``EnrolmentConfirmed`` until ``EnrolmentCancelled`` or ``EnrolmentRejected``; a completed
  enrolment keeps it (the training was given). A session with a live enrolment cannot be
  removed from its course. Each row keeps the learner and the provider: a validation of
  prior learning is recorded on a live enrolment by its provider.

A fetched batch of these events is applied together (:func:`apply_many`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.store import views
from shared.events.accounts import AccountOpened, AccountTransferred
from shared.events.payments import EnrolmentCancelled, EnrolmentConfirmed, EnrolmentRejected
from shared.inbox_batch import rounds

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
    await views.set_seat(
        session,
        event.enrolment_id,
        event.course_id,
        event.session_id,
        live=live,
        account_id=event.account_id,
        provider_id=event.provider_id,
    )


def seat(event: EnrolmentEvent) -> views.Seat:
    return (
        event.enrolment_id,
        event.course_id,
        event.session_id,
        event.account_id,
        event.provider_id,
    )


async def apply_many(
    session: AsyncSession, events: Sequence[AccountEvent | EnrolmentEvent]
) -> None:
    """What :func:`apply_account_event` and :func:`apply_enrolment_event` do for each event, in
    a few multi-row statements per round (an account's or an enrolment's events in their
    order, see :func:`shared.inbox_batch.rounds`)."""
    keys = [
        e.account_id if isinstance(e, AccountOpened | AccountTransferred) else e.enrolment_id
        for e in events
    ]
    for indices in rounds(keys):
        agencies: list[tuple[uuid.UUID, str]] = []
        held: list[views.Seat] = []
        freed: list[views.Seat] = []
        for event in (events[i] for i in indices):
            match event:
                case AccountOpened():
                    agencies.append((event.account_id, event.agency_id))
                case AccountTransferred():
                    agencies.append((event.account_id, event.to_agency_id))
                case EnrolmentConfirmed():
                    held.append(seat(event))
                case EnrolmentCancelled() | EnrolmentRejected():
                    freed.append(seat(event))
        await views.set_account_agencies(session, agencies)
        await views.set_seats(session, held, live=True)
        await views.set_seats(session, freed, live=False)
