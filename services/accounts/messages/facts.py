"""The other services' events the accounts service turns into messages, or keeps to tell
later (proposals until answered, credit lots with an expiry date).

- payments: ``EnrolmentProposed`` (tell; keep until answered), its answers
  (``EnrolmentRequested``, ``EnrolmentConfirmed``, ``EnrolmentRejected``,
  ``EnrolmentCancelled``: no reminder any more), ``ClaimContested`` (acknowledge);
- catalogue: ``CredentialIssued`` (tell);
- ledger: the lots with an expiry date and what moves them (grants, reservations, captures,
  releases, expiries, reversals), mirroring the ledger's wallet: ``remaining`` falls on a
  capture, an expiry or a grant's reversal and rises on a capture's reversal; ``reserved``
  rises on a reservation and falls when it is captured or released.

Each handler runs in the consumer's transaction with the event's inbox row.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.messages import Messenger, Tell, moment, money, stamp
from services.accounts.store import messages as store
from shared.events import Envelope
from shared.events.catalogue import CredentialIssued
from shared.events.ledger import (
    CreditsGranted,
    CreditsReserved,
    EntryReversed,
    LotExpired,
    ReservationCaptured,
    ReservationReleased,
)
from shared.events.payments import (
    ClaimContested,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentProposed,
    EnrolmentRejected,
    EnrolmentRequested,
)
from shared.inbox import EventConsumer

ANSWERS = (EnrolmentRequested, EnrolmentConfirmed, EnrolmentRejected, EnrolmentCancelled)
LOT_MOVES = (
    CreditsGranted,
    CreditsReserved,
    ReservationCaptured,
    ReservationReleased,
    LotExpired,
    EntryReversed,
)


def register(consumer: EventConsumer, messenger: Messenger) -> None:

    async def proposed(session: AsyncSession, envelope: Envelope, e: EnrolmentProposed) -> None:
        await store.put_proposal(session, proposal_of(e))
        await messenger.tell_many(session, [waiting(e, messenger)])

    async def answer(session: AsyncSession, envelope: Envelope, e: Any) -> None:
        await store.answered(session, e.enrolment_id)

    async def contested(session: AsyncSession, envelope: Envelope, e: ClaimContested) -> None:
        account_id = e.account_id or await store.account_of_enrolment(session, e.enrolment_id)
        if account_id is None:
            return  # a claim on an enrolment told before accounts kept them: nobody to tell
        await messenger.tell(
            session,
            account_id,
            "claim_contested",
            f"claim_contested:{e.claim_id}",
            claim_id=str(e.claim_id),
            reason_code=e.reason_code,
        )

    async def credential(session: AsyncSession, envelope: Envelope, e: CredentialIssued) -> None:
        await messenger.tell(
            session,
            e.account_id,
            "credential_issued",
            f"credential_issued:{e.credential_id}",
            credential_id=str(e.credential_id),
            issued_on=e.issued_at.date().isoformat(),
        )

    async def lot_moved(session: AsyncSession, envelope: Envelope, e: Any) -> None:
        await apply_lot_event(session, e)

    consumer.on(EnrolmentProposed)(proposed)
    for kind in ANSWERS:
        consumer.on(kind)(answer)
    consumer.on(ClaimContested)(contested)
    consumer.on(CredentialIssued)(credential)
    for move in LOT_MOVES:
        consumer.on(move)(lot_moved)


def proposal_of(e: EnrolmentProposed) -> store.Proposal:
    """The proposal kept until it is answered."""
    return store.Proposal(
        enrolment_id=e.enrolment_id,
        account_id=e.account_id,
        provider_id=e.provider_id,
        starts_on=e.starts_on,
        ends_on=e.ends_on,
        price=e.price,
        co_payment=e.co_payment,
        expires_at=e.expires_at,
    )


def waiting(e: EnrolmentProposed, messenger: Messenger) -> Tell:
    """The message that tells the learner a proposal waits for their consent (once per
    proposal and deadline)."""
    currency = messenger.rules.currency
    return Tell(
        e.account_id,
        "proposal_waiting",
        f"proposal_waiting:{e.enrolment_id}:{stamp(e.expires_at)}",
        {
            "provider_id": e.provider_id,
            "starts_on": e.starts_on.isoformat(),
            "ends_on": e.ends_on.isoformat(),
            "price": money(e.price, currency),
            "co_payment": money(e.co_payment, currency),
            "enrolment_id": str(e.enrolment_id),
            "deadline": moment(e.expires_at),
        },
    )


Move = tuple[uuid.UUID, int, int]
"""What an event does to one lot: lot id, added to ``remaining``, added to ``reserved``."""


def lot_moves(e: Any) -> list[Move]:
    """The lots ``e`` moves, as the ledger's wallet moves them (a grant adds a lot: not a
    move)."""
    match e:
        case CreditsReserved():
            return [(a.lot_id, 0, a.amount) for a in e.allocations]
        case ReservationCaptured():
            return [(a.lot_id, -a.amount, -a.amount) for a in e.allocations] + [
                (a.lot_id, 0, -a.amount) for a in e.released_allocations
            ]
        case ReservationReleased():
            return [(a.lot_id, 0, -a.amount) for a in e.allocations]
        case LotExpired():
            return [(e.lot_id, -e.amount, 0)]
        case EntryReversed():
            # a grant's reversal takes from its lot; a capture's gives back to the lots
            sign = -1 if e.lot_id is not None else 1
            return [(a.lot_id, sign * a.amount, 0) for a in e.allocations]
    return []


def add_move(deltas: dict[uuid.UUID, tuple[int, int]], lot_id: uuid.UUID, r: int, h: int) -> None:
    """Add ``r`` to the lot's ``remaining`` and ``h`` to its ``reserved`` in ``deltas``."""
    before = deltas.get(lot_id, (0, 0))
    deltas[lot_id] = (before[0] + r, before[1] + h)


async def apply_lot_event(session: AsyncSession, e: Any) -> None:
    """Move the kept lots as the ledger's wallet moves them."""
    if isinstance(e, CreditsGranted):
        if e.expires_at is not None:
            await store.add_lot(
                session, e.lot_id, e.account_id, e.funder_id, e.amount, e.expires_at
            )
        return
    deltas: dict[uuid.UUID, tuple[int, int]] = {}
    for lot_id, r, h in lot_moves(e):
        add_move(deltas, lot_id, r, h)
    await store.shift_lots(session, deltas)
