"""A run of consecutive messages whose handler decides many at once (``EventConsumer.on_batch``).

Same guarantees as one message at a time, with fewer round trips: the run's inbox rows are
inserted in one statement (a redelivered event finds its id and is skipped), the handler
gets every new event of the run in order and answers one error or None per event; an event
it refuses is tried again alone (``max_attempts``), then dead-lettered, while its neighbours
are applied. A transient database failure aborts the whole batch (it is delivered again);
any other failure of the handler as a whole raises :class:`RunFailed`: the consumer rolls the
batch back and applies it again one message at a time through the single handlers (no
savepoint around a run: two round trips saved on every batch, paid only by the rare batch that
fails).

A handler writing many events with one multi-row statement must not touch one row twice in a
statement and must keep each aggregate's order: :func:`rounds` cuts its events into rounds
where each key appears once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Message
from shared.bus.inprocess import read_once
from shared.db import driver, is_transient
from shared.events import Envelope, Event, model_for
from shared.metrics import EVENTS_IN

if TYPE_CHECKING:
    from shared.inbox import EventConsumer

log = logging.getLogger(__name__)

BatchHandler = Callable[
    [AsyncSession, Sequence[tuple[Envelope, Any]]], Awaitable[Sequence[BaseException | None]]
]


class RunFailed(Exception):
    """A batch handler failed as a whole: the batch is rolled back and applied again one
    message at a time."""


def rounds(keys: Sequence[Hashable]) -> list[list[int]]:
    """The positions of ``keys`` cut into rounds: the n-th occurrence of a key goes to round
    n. Applying the rounds in turn keeps each key's order, and one multi-row statement per
    round never touches a row twice. Most batches are one round."""
    seen: dict[Hashable, int] = {}
    result: list[list[int]] = []
    for i, key in enumerate(keys):
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(result):
            result.append([])
        result[n].append(i)
    return result


def envelope_of(message: Message) -> Envelope | None:
    """The message's envelope; None when it cannot be read (the single path dead-letters it).
    Within one in-process delivery to several groups, read once for all of them."""
    return read_once(message, lambda: _envelope(message))


def _envelope(message: Message) -> Envelope | None:
    try:
        return Envelope.from_bytes(message.value)
    except (ValidationError, ValueError):
        return None


def payload_of(envelope: Envelope) -> Event:
    """The envelope's payload, validated by its type's model (``AssertionError`` when the
    type has none). Within one in-process delivery to several groups, validated once for
    all of them (the events are frozen models)."""
    return read_once(envelope, lambda: _payload(envelope))


def _payload(envelope: Envelope) -> Event:
    model = model_for(envelope.type)
    assert model is not None
    return model.model_validate(envelope.data)


async def apply_run(
    consumer: EventConsumer, session: AsyncSession, run: Sequence[tuple[Message, Envelope]]
) -> list[tuple[Message, str]]:
    """Apply ``run``; return the messages to dead-letter with their error. Raises
    :class:`RunFailed` when the handler fails as a whole (the transaction is then spoilt)."""
    if not run:
        return []
    try:
        return await _apply(consumer, session, run)
    except Exception as exc:
        if is_transient(exc):
            raise
        raise RunFailed(f"{type(exc).__name__}: {exc}") from exc


async def _apply(
    consumer: EventConsumer, session: AsyncSession, run: Sequence[tuple[Message, Envelope]]
) -> list[tuple[Message, str]]:
    service = consumer.service
    rows = await (await driver(session)).fetch(
        f'INSERT INTO "{service}".inbox (event_id, type, topic, outcome) '
        "SELECT *, 'applied' FROM unnest($1::uuid[], $2::text[], $3::text[]) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [e.id for _, e in run],
        [e.type for _, e in run],
        [m.topic for m, _ in run],
    )
    inserted = {r["event_id"] for r in rows}
    fresh: list[tuple[Message, Envelope]] = []
    duplicates: Counter[str] = Counter()
    for message, envelope in run:
        if envelope.id in inserted:
            inserted.discard(envelope.id)  # a second copy in the same batch is a duplicate
            fresh.append((message, envelope))
        else:
            duplicates[envelope.type] += 1
    _count(service, "duplicate", duplicates)
    applied: Counter[str] = Counter()
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
                    items.append((envelope, payload_of(envelope)))
                    slots.append(i)
                except (ValidationError, AssertionError) as exc:
                    errors[i] = f"{type(exc).__name__}: {exc}"
                    failed.append(i)
            handler = consumer.batch_handlers[fresh[group[0]][1].type]
            for i, error in zip(slots, await handler(session, items), strict=True):
                if error is None:
                    errors.pop(i, None)
                    applied[fresh[i][1].type] += 1
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
    _count(service, "applied", applied)
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


def _count(service: str, outcome: str, types: Counter[str]) -> None:
    for ce_type, n in types.items():
        EVENTS_IN.labels(service, ce_type, outcome).inc(n)


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
