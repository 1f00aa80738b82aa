"""Read models payments keeps from other services' events: accounts (status and the employment
status the participation fee depends on), top-up lots (earmarked top-ups waive the fee),
providers, their bank accounts, courses and their sessions (from the catalogue)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.payees import REGISTERED
from services.payments.domain.views import CourseView, SessionView
from services.payments.store import leave, payees, read_models
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
)
from shared.events.catalogue import (
    CourseApproved,
    CourseRejected,
    CourseSubmitted,
    CourseUpdated,
    CourseWithdrawn,
    ProviderAccredited,
    ProviderRegistered,
    ProviderSuspended,
)
from shared.events.ledger import CreditsGranted, EntryReversed
from shared.inbox_batch import rounds

AccountEvent = (
    AccountOpened
    | AccountProfileUpdated
    | AccountSuspended
    | AccountReinstated
    | AccountClosed
    | AccountTransferred
)


def account_fields(event: AccountEvent) -> dict[str, str]:
    """The columns of ``payments.accounts`` the event sets (an ``AccountOpened`` inserts the
    account, active, when it is not known yet)."""
    match event:
        case AccountOpened():
            return {
                "agency_id": event.agency_id,
                "employment_status": event.profile.employment_status,
                "need_tier": event.profile.need_tier,
            }
        case AccountProfileUpdated():
            return {
                "employment_status": event.profile.employment_status,
                "need_tier": event.profile.need_tier,
            }
        case AccountSuspended():
            return {"status": "suspended"}
        case AccountReinstated():
            return {"status": "active"}
        case AccountClosed():
            return {"status": "closed"}
        case AccountTransferred():
            return {"agency_id": event.to_agency_id}


async def apply_account_event(session: AsyncSession, event: AccountEvent) -> None:
    fields = account_fields(event)
    if isinstance(event, AccountOpened):
        await read_models.upsert_account(session, event.account_id, status="active", **fields)
    else:
        await read_models.update_account(session, event.account_id, **fields)


def lot_row(event: CreditsGranted) -> dict[str, Any]:
    return {
        "lot_id": event.lot_id,
        "account_id": event.account_id,
        "kind": event.kind,
        "funder_id": event.funder_id,
        "amount": event.amount,
        "earmark": event.earmark.model_dump(mode="json") if event.earmark else None,
        "expires_at": event.expires_at,
    }


async def apply_ledger_event(session: AsyncSession, event: CreditsGranted | EntryReversed) -> None:
    match event:
        case CreditsGranted():
            await read_models.add_lot(session, lot_row(event))
        case EntryReversed():
            if event.lot_id is not None:
                await read_models.revoke_lot(session, event.lot_id)


BatchedEvent = AccountEvent | CreditsGranted
"""The events a fetched batch applies together (:func:`apply_many`)."""


async def apply_many(session: AsyncSession, events: Sequence[BatchedEvent]) -> None:
    """What :func:`apply_account_event` and :func:`apply_ledger_event` do for each event, in
    a few multi-row statements: the lots in one, the accounts in one insert and one update per
    round (an account's events in their order, see :func:`shared.inbox_batch.rounds`)."""
    await read_models.add_lots(
        session, [lot_row(e) for e in events if isinstance(e, CreditsGranted)]
    )
    accounts = [e for e in events if not isinstance(e, CreditsGranted)]
    for indices in rounds([e.account_id for e in accounts]):
        opened, changed = [], []
        for event in (accounts[i] for i in indices):
            fields = account_fields(event)
            if isinstance(event, AccountOpened):
                opened.append(
                    (
                        event.account_id,
                        fields["agency_id"],
                        fields["employment_status"],
                        fields["need_tier"],
                    )
                )
            else:
                changed.append((event.account_id, fields))
        await read_models.open_accounts(session, opened)
        await read_models.change_accounts(session, changed)


# --- catalogue ---------------------------------------------------------------------------

CatalogueEvent = (
    ProviderRegistered
    | ProviderAccredited
    | ProviderSuspended
    | CourseApproved
    | CourseUpdated
    | CourseSubmitted
    | CourseRejected
    | CourseWithdrawn
)


async def apply_catalogue_event(session: AsyncSession, event: CatalogueEvent) -> None:
    match event:
        case ProviderRegistered():
            await read_models.upsert_provider(
                session,
                event.provider_id,
                status=event.status,
                name=event.name,
                qa_valid_until=event.qa_valid_until,
                agency_id=event.agency_id,
            )
            # the bank account registered with the provider, unless one is held already
            await payees.put_payee(
                session,
                event.provider_id,
                REGISTERED,
                name=event.payout.account_holder,
                iban=event.payout.iban,
                bic=event.payout.bic or None,
                actor="catalogue",
                now=event.registered_at,
            )
        case ProviderAccredited():
            await read_models.upsert_provider(
                session,
                event.provider_id,
                status="accredited",
                qa_valid_until=event.qa_valid_until,
            )
        case ProviderSuspended():
            await read_models.upsert_provider(session, event.provider_id, status="suspended")
        case CourseApproved():
            await course_terms(session, event, "approved")
        case CourseUpdated():
            await course_terms(session, event, event.status)
        case CourseSubmitted():
            await read_models.set_course_status(
                session, event.course_id, "submitted", event.version
            )
        case CourseRejected():
            await read_models.set_course_status(session, event.course_id, "rejected", event.version)
        case CourseWithdrawn():
            await read_models.set_course_status(
                session, event.course_id, "withdrawn", event.version
            )


async def course_terms(
    session: AsyncSession, event: CourseApproved | CourseUpdated, status: str
) -> None:
    """The terms of one course version: price, classification and sessions."""
    await course_approved(
        session,
        course_id=event.course_id,
        provider_id=event.provider_id,
        version=event.version,
        price=event.price,
        title=event.title,
        isced_field=event.isced_field,
        eqf_level=event.eqf_level,
        tags=event.tags,
        region=event.region,
        kind=event.kind,
        status=status,
        sessions=[
            {
                "session_id": s.session_id,
                "starts_on": s.start.astimezone(UTC).date(),
                "ends_on": s.end.astimezone(UTC).date(),
                "ends_at": s.end.astimezone(UTC),
                "seats": s.seats,
            }
            for s in event.sessions
        ],
    )
    # the hours of training the course takes (bounding the hours of leave asked for it)
    await leave.set_workload(session, event.course_id, event.version, event.workload_hours)


async def course_approved(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    provider_id: str,
    version: int,
    price: int,
    sessions: Sequence[dict[str, Any]],
    title: str = "",
    isced_field: str | None = None,
    eqf_level: int | None = None,
    tags: Sequence[str] = (),
    region: str | None = None,
    status: str = "approved",
    kind: str | None = None,
) -> None:
    """The course at ``version``, with all its sessions (an older version changes nothing)."""
    known = await read_models.course(session, course_id)
    if known is not None and known.version > version:
        return
    await read_models.upsert_course(
        session,
        CourseView(
            course_id=course_id,
            provider_id=provider_id,
            version=version,
            status=status,
            price=price,
            isced_field=isced_field,
            eqf_level=eqf_level,
            tags=tuple(tags),
            region=region,
            kind=kind,
        ),
        title=title,
    )
    await read_models.replace_sessions(
        session,
        course_id,
        [
            SessionView(
                session_id=uuid.UUID(str(s["session_id"])),
                course_id=course_id,
                starts_on=_date(s["starts_on"]),
                ends_on=_date(s["ends_on"]),
                seats=int(s["seats"]),
                withdrawn=False,
                ends_at=s.get("ends_at"),
            )
            for s in sessions
        ],
    )


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
