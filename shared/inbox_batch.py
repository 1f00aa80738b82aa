"""A run of consecutive messages whose handler decides many at once (``EventConsumer.on_batch``).

Same guarantees as one message at a time, with fewer round trips: the run's inbox rows are
inserted in one statement (a redelivered event finds its id and is skipped), the handler
gets every new event of the run in order and answers one error or None per event; an event
it refuses is tried again alone (``max_attempts``), then dead-lettered, while its neighbours
are applied. A transient database failure aborts the whole batch (it is delivered again);
any other failure of the handler as a whole rolls the run back to its savepoint and applies
its messages one at a time through the single handlers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Message
from shared.db import is_transient
from shared.events import Envelope, model_for
from shared.metrics import EVENTS_IN

if TYPE_CHECKING:
    from shared.inbox import EventConsumer

log = logging.getLogger(__name__)

BatchHandler = Callable[
    [AsyncSession, Sequence[tuple[Envelope, Any]]], Awaitable[Sequence[BaseException | None]]
]


def batchable(consumer: EventConsumer, message: Message) -> Envelope | None:
    """The message's envelope when a batch handler takes it, else None."""
    if not consumer.batch_handlers:
        return None
    try:
        envelope = Envelope.from_bytes(message.value)
    except (ValidationError, ValueError):
        return None  # the single path dead-letters it
    return envelope if envelope.type in consumer.batch_handlers else None


async def apply_run(
    consumer: EventConsumer, session: AsyncSession, run: Sequence[tuple[Message, Envelope]]
) -> list[tuple[Message, str]]:
    """Apply ``run``; return the messages to dead-letter with their error."""
    if not run:
        return []
    try:
        async with session.begin_nested():
            return await _apply(consumer, session, run)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("batch handler of %s failed, one at a time: %s", consumer.service, exc)
    dead = []
    for message, _ in run:
        error = await consumer.handle_one(session, message)
        if error is not None:
            dead.append((message, error))
    return dead


async def _apply(
    consumer: EventConsumer, session: AsyncSession, run: Sequence[tuple[Message, Envelope]]
) -> list[tuple[Message, str]]:
    service = consumer.service
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    rows = await driver.fetch(
        f'INSERT INTO "{service}".inbox (event_id, type, topic, outcome) '
        "SELECT *, 'applied' FROM unnest($1::uuid[], $2::text[], $3::text[]) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [e.id for _, e in run],
        [e.type for _, e in run],
        [m.topic for m, _ in run],
    )
    inserted = {r["event_id"] for r in rows}
    fresh: list[tuple[Message, Envelope]] = []
    for message, envelope in run:
        if envelope.id in inserted:
            inserted.discard(envelope.id)  # a second copy in the same batch is a duplicate
            fresh.append((message, envelope))
        else:
            EVENTS_IN.labels(service, envelope.type, "duplicate").inc()
    errors: dict[int, str] = {}
    pending = list(range(len(fresh)))
    for attempt in range(1, consumer.max_attempts + 1):
        if attempt > 1:
            await asyncio.sleep(consumer.retry_delay * (attempt - 1))
        failed: list[int] = []
        for group in _by_handler(consumer, fresh, pending):
            items, slots = [], []
            for i in group:
                envelope = fresh[i][1]
                try:
                    model = model_for(envelope.type)
                    assert model is not None
                    items.append((envelope, model.model_validate(envelope.data)))
                    slots.append(i)
                except (ValidationError, AssertionError) as exc:
                    errors[i] = f"{type(exc).__name__}: {exc}"
                    failed.append(i)
            handler = consumer.batch_handlers[fresh[group[0]][1].type]
            for i, error in zip(slots, await handler(session, items), strict=True):
                if error is None:
                    errors.pop(i, None)
                    EVENTS_IN.labels(service, fresh[i][1].type, "applied").inc()
                else:
                    errors[i] = f"{type(error).__name__}: {error}"
                    failed.append(i)
        pending = sorted(failed)
        if not pending:
            break
        log.warning(
            "%d of a batch of %s failed (attempt %d/%d)",
            len(pending),
            service,
            attempt,
            consumer.max_attempts,
        )
    dead = []
    for i in pending:
        message, envelope = fresh[i]
        await session.execute(
            text(
                f"UPDATE \"{service}\".inbox SET outcome = 'dead_lettered', "
                "error = :error WHERE event_id = :id"
            ),
            {"id": envelope.id, "error": errors[i][:2000]},
        )
        EVENTS_IN.labels(service, envelope.type, "dead_lettered").inc()
        dead.append((message, errors[i]))
    return dead


def _by_handler(
    consumer: EventConsumer, fresh: Sequence[tuple[Message, Envelope]], pending: Sequence[int]
) -> list[list[int]]:
    """``pending`` cut into consecutive groups that share a batch handler (order kept)."""
    groups: list[list[int]] = []
    last: BatchHandler | None = None
    for i in pending:
        handler = consumer.batch_handlers[fresh[i][1].type]
        if groups and handler is last:
            groups[-1].append(i)
        else:
            groups.append([i])
            last = handler
    return groups
