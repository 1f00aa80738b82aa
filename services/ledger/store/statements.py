"""What a funder's lots paid in a period, read from the event store itself: each capture's
part taken from a lot of the funder (``ReservationCaptured``), and each capture reversal's
part given back to one (``EntryReversed`` of a capture, negative), with the enrolment, the
claim (the capture's id) and the provider the capture names.

Read from the events (not from a projection) so that a statement is exactly what the
ledger's audit stream says; a partial index keeps the events that move paid credit by time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all

PAYMENT_EVENTS = (
    "(type LIKE 'ila.ledger.ReservationCaptured.%' OR type LIKE 'ila.ledger.EntryReversed.%')"
)
"""The predicate of the ``events_payments`` index (the query repeats it word for word)."""

STATEMENT_SQL = f"""
WITH moves AS (
    SELECT e.position, e.recorded_at, e.stream_id, e.type, e.data,
           (a ->> 'lot_id')::uuid AS lot_id, (a ->> 'amount')::bigint AS amount
    FROM ledger.events e, jsonb_array_elements(e.data -> 'allocations') a
    WHERE {PAYMENT_EVENTS}
      AND e.recorded_at >= :start AND e.recorded_at < :stop
      AND (e.type LIKE 'ila.ledger.ReservationCaptured.%'
           OR e.data ->> 'target_event' = 'ledger.ReservationCaptured')
)
SELECT m.position, m.recorded_at AS occurred_at,
       CASE WHEN m.type LIKE 'ila.ledger.EntryReversed.%' THEN 'reversal' ELSE 'capture' END
           AS kind,
       r.enrolment_id, (m.data ->> 'reservation_id')::uuid AS reservation_id,
       CASE WHEN m.type LIKE 'ila.ledger.ReservationCaptured.%'
            THEN (m.data ->> 'capture_id')::uuid END AS claim_id,
       COALESCE(m.data ->> 'provider_id', (
           SELECT c.data ->> 'provider_id' FROM ledger.events c
           WHERE c.stream_id = m.stream_id AND c.type LIKE 'ila.ledger.ReservationCaptured.%'
             AND c.data ->> 'reservation_id' = m.data ->> 'reservation_id'
             AND c.data ->> 'provider_id' IS NOT NULL ORDER BY c.version LIMIT 1))
           AS provider_id,
       m.lot_id, l.kind AS lot_kind, l.year AS lot_year, l.reason AS lot_reason,
       CASE WHEN m.type LIKE 'ila.ledger.EntryReversed.%' THEN -m.amount ELSE m.amount END
           AS amount
FROM moves m
JOIN ledger.lots l ON l.lot_id = m.lot_id AND l.funder_id = :funder
LEFT JOIN ledger.reservations r ON r.reservation_id = (m.data ->> 'reservation_id')::uuid
ORDER BY m.position, m.lot_id
"""


async def statement_lines(
    session: AsyncSession, funder_id: str, start: datetime, stop: datetime
) -> list[dict[str, Any]]:
    """The funder's lines of ``[start, stop)``, in the order the ledger recorded them."""
    params = {"funder": funder_id, "start": start, "stop": stop}
    return await fetch_all(session, dict, STATEMENT_SQL, params)


__all__ = ["PAYMENT_EVENTS", "statement_lines"]
