"""The ledger's answers to payments' requests: reserved or rejected, captured, released.

Each handler finds its reservation by the id payments chose and does nothing when the
reservation is not one of ours or the answer was already applied, so an answer delivered
twice (even under a new event id) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import store
from services.payments.handlers import Payments
from services.payments.handlers.enrolments import change as change_enrolment
from shared.events.ledger import (
    CreditsReserved,
    ReservationCaptured,
    ReservationRejected,
    ReservationReleased,
)
from shared.events.payments import (
    CompletionCertified,
    EnrolmentConfirmed,
    EnrolmentRejected,
    ReleaseRequested,
)
from shared.outbox import EventContext

log = logging.getLogger(__name__)
Row = dict[str, Any]


def _ref(row: Row) -> dict[str, Any]:
    return {
        "enrolment_id": row["enrolment_id"],
        "account_id": row["account_id"],
        "provider_id": row["provider_id"],
        "course_id": row["course_id"],
        "session_id": row["session_id"],
    }


async def _reservation(session: AsyncSession, event: Any, expected: str) -> Row | None:
    row = await store.get(session, "reservations", event.reservation_id, lock=True)
    if row is None or row["status"] != expected:
        return None
    return row


async def on_reserved(
    p: Payments, session: AsyncSession, event: CreditsReserved, ctx: EventContext
) -> None:
    res = await _reservation(session, event, "requested")
    if res is None:
        return
    now = p.clock.now()
    await store.update(
        session,
        "reservations",
        res["reservation_id"],
        status="active",
        amount=event.amount,
        updated_at=now,
    )
    enrolment = await store.get(session, "enrolments", res["enrolment_id"], lock=True)
    assert enrolment is not None
    if enrolment["reservation_id"] != res["reservation_id"]:
        return
    if enrolment["status"] == "reserving":
        co_payment = enrolment["price"] - event.amount
        await change_enrolment(
            session,
            enrolment,
            status="confirmed",
            covered=event.amount,
            co_payment=co_payment,
            reason=None,
            decided_at=now,
            updated_at=now,
        )
        await p.outbox.add(
            session,
            [
                EnrolmentConfirmed(
                    **_ref(enrolment),
                    price=enrolment["price"],
                    covered=event.amount,
                    co_payment=co_payment,
                    participation_fee=enrolment["participation_fee"],
                )
            ],
            ctx,
        )
    elif enrolment["status"] in ("cancelled", "rejected", "expired"):
        # the enrolment ended while the ledger was reserving: give the credit back
        await p.outbox.add(
            session,
            [
                ReleaseRequested(
                    enrolment_id=event.enrolment_id,
                    account_id=event.account_id,
                    reservation_id=event.reservation_id,
                    reason=f"enrolment {enrolment['status']}",
                )
            ],
            ctx,
        )


async def on_rejected(
    p: Payments, session: AsyncSession, event: ReservationRejected, ctx: EventContext
) -> None:
    res = await _reservation(session, event, "requested")
    if res is None:
        return
    now = p.clock.now()
    await store.update(
        session,
        "reservations",
        res["reservation_id"],
        status="rejected",
        reason=event.reason,
        updated_at=now,
    )
    enrolment = await store.get(session, "enrolments", res["enrolment_id"], lock=True)
    assert enrolment is not None
    if enrolment["reservation_id"] != res["reservation_id"] or enrolment["status"] != "reserving":
        return
    if event.reason == "insufficient_credit" and event.available > 0 and not res["up_to"]:
        # the learner may still take what the account has and pay the rest
        await change_enrolment(
            session,
            enrolment,
            status="awaiting_co_payment",
            reason="insufficient_credit",
            available_at_rejection=event.available,
            co_payment=enrolment["price"] - event.available,
            expires_at=now + p.config.confirmation_window,
            updated_at=now,
        )
        return
    await change_enrolment(
        session,
        enrolment,
        status="rejected",
        reason=event.reason,
        available_at_rejection=event.available,
        decided_at=now,
        updated_at=now,
    )
    await p.outbox.add(
        session,
        [EnrolmentRejected(**_ref(enrolment), status="rejected", reason=event.reason)],
        ctx,
    )


async def on_captured(
    p: Payments, session: AsyncSession, event: ReservationCaptured, ctx: EventContext
) -> None:
    res = await _reservation(session, event, "active")
    if res is None:
        return
    now = p.clock.now()
    await store.update(
        session,
        "reservations",
        res["reservation_id"],
        status="captured",
        captured=event.amount,
        released=event.released,
        updated_at=now,
    )
    enrolment = await store.get(session, "enrolments", res["enrolment_id"], lock=True)
    assert enrolment is not None
    fields: dict[str, Any] = {
        "captured": enrolment["captured"] + event.amount,
        "released": enrolment["released"] + event.released,
        "updated_at": now,
    }
    claim = await store.claim_awaiting_capture(session, res["reservation_id"])
    if claim is None:
        log.warning("capture of reservation %s matches no claim", res["reservation_id"])
        await change_enrolment(session, enrolment, **fields)
        return
    held = claim["status"] == "held"
    await store.update(
        session,
        "claims",
        claim["claim_id"],
        captured=event.amount,
        captured_at=now,
        status="held" if held else "captured",
        updated_at=now,
    )
    if claim["milestone"] == "completion" and enrolment["status"] == "confirmed":
        fields["status"] = "completed"
    await change_enrolment(session, enrolment, **fields)
    evidence = claim["evidence"]
    if claim["milestone"] == "completion" and evidence.get("certified"):
        completed_on = datetime.fromisoformat(evidence["completed_on"]).date()
        await p.outbox.add(
            session,
            [
                CompletionCertified(
                    enrolment_id=enrolment["enrolment_id"],
                    account_id=enrolment["account_id"],
                    course_id=enrolment["course_id"],
                    course_version=enrolment["course_version"],
                    provider_id=enrolment["provider_id"],
                    completed_at=datetime.combine(completed_on, time(), tzinfo=UTC),
                    completion_rate=claim["completion_rate"] or 0,
                    grade=evidence.get("grade"),
                )
            ],
            ctx,
        )


async def on_released(
    p: Payments, session: AsyncSession, event: ReservationReleased, ctx: EventContext
) -> None:
    res = await _reservation(session, event, "active")
    if res is None:
        return
    now = p.clock.now()
    status = "expired" if event.reason == "expired" else "released"
    await store.update(
        session,
        "reservations",
        res["reservation_id"],
        status=status,
        released=event.amount,
        updated_at=now,
    )
    enrolment = await store.get(session, "enrolments", res["enrolment_id"], lock=True)
    assert enrolment is not None
    fields: dict[str, Any] = {"released": enrolment["released"] + event.amount, "updated_at": now}
    if status == "expired" and enrolment["status"] == "confirmed":
        # nobody claimed within the claim window: the enrolment lapses
        fields.update(status="expired", reason="reservation_expired", decided_at=now)
    await change_enrolment(session, enrolment, **fields)
