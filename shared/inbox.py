"""Inbox-based consumer: exactly-once effects over at-least-once delivery.

For each batch the bus delivers, one transaction: every event id is recorded in the
service's inbox together with the handler's effects (each event in its own savepoint, or
consecutive events a batch handler takes decided together: :mod:`shared.inbox_batch`).
A redelivered event finds its id and changes nothing. A handler that keeps failing after
``max_attempts`` tries is stored in the service's ``dead_letters`` table with its error
(and sent to the group's dead-letter topic), and the batch moves on; an operator replays it
after a fix (:mod:`shared.dead_letters`). A transient database failure (deadlock,
serialization failure, lost connection) is no reason to give up on a message: it aborts the
batch, which is delivered again. Offsets are committed by the transport only after this returns.

An older version of an event the consumer handles is brought up to date by the registered
upcasters. An event this deployment cannot read at all (a newer version, or a type an
upgraded producer introduced) is never dropped: it is *parked* whole in the service's
``parked`` table, and :meth:`EventConsumer.replay_parked` applies it once an upgrade gave
the consumer a handler (the service does so when it starts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import dead_letters
from shared.bus import Bus, Message, dlt_topic, type_hint
from shared.db import is_transient, transaction
from shared.events import Envelope, Event, model_for
from shared.events.base import newer_types, upcasts
from shared.inbox_batch import BatchHandler, RunFailed, apply_run, envelope_of, payload_of
from shared.inbox_join import Joiner
from shared.logs import correlation_id
from shared.metrics import DEAD_LETTERS, EVENTS_IN

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]


class EventConsumer:
    def __init__(
        self,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        max_attempts: int = 3,
        retry_delay: float = 0.05,
        dead_letter_topic: str | None = None,
        join_concurrency: int = 2,
        fetch_wait_ms: int = 0,
    ) -> None:
        self.service = service
        self.fetch_wait_ms = fetch_wait_ms  # see ServiceDefinition.consumer_fetch_wait_ms
        # the partitions' batches that arrive together share a transaction (shared.inbox_join)
        self.joiner = Joiner(self._handle, concurrency=join_concurrency)
        self.sessions = sessions
        self.bus = bus
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.dead_letter_topic = dead_letter_topic or dlt_topic(service)
        self.handlers: dict[str, Handler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.topics: set[str] = set()
        self._ignored: dict[str, bool] = {}

    def on(self, event_type: type[Event]) -> Callable[[Handler], Handler]:
        """Register ``handler(session, envelope, payload)`` for one event type."""

        def register(fn: Handler) -> Handler:
            self.handlers[event_type.cloudevent_type()] = fn
            self._ignored.clear()
            from shared.bus import topic_for

            self.topics.add(topic_for(event_type.topic))
            return fn

        return register

    def on_batch(self, *event_types: type[Event]) -> Callable[[BatchHandler], BatchHandler]:
        """Register ``handler(session, [(envelope, payload), ...])`` deciding consecutive
        events of these types together; it answers one error or None per event, in order
        (see :mod:`shared.inbox_batch`). Each type keeps its single handler (``on``), used
        when the batch handler fails as a whole."""

        def register(fn: BatchHandler) -> BatchHandler:
            for event_type in event_types:
                self.batch_handlers[event_type.cloudevent_type()] = fn
            self._ignored.clear()
            return fn

        return register

    def attach(self) -> None:
        if self.topics:
            self.bus.subscribe(
                self.service,
                sorted(self.topics),
                self.handle_batch,
                fetch_wait_ms=self.fetch_wait_ms,
            )

    async def handle_batch(self, messages: Sequence[Message]) -> None:
        """Apply a delivered batch (with the batches other partitions deliver meanwhile);
        return once it is committed."""
        await self.joiner.submit(messages)

    async def _handle(self, messages: Sequence[Message]) -> None:
        try:
            await self._apply_batch(messages, batched=bool(self.batch_handlers))
        except RunFailed as exc:
            log.warning("batch handler of %s failed, one at a time: %s", self.service, exc)
            await self._apply_batch(messages, batched=False)

    async def _apply_batch(self, messages: Sequence[Message], *, batched: bool) -> None:
        # what the relay's type header names as ignored is not read: nothing to apply (a
        # run of events decided together goes on over it), and a batch of nothing else
        # opens no transaction
        messages = [m for m in messages if (hint := type_hint(m)) is None or not self.ignores(hint)]
        if not messages:
            return
        dead: list[Message] = []
        async with transaction(self.sessions) as session:
            failed: list[tuple[Message, str]] = []
            run: list[tuple[Message, Envelope]] = []  # consecutive messages decided together
            for message in messages:
                envelope = envelope_of(message)
                if batched and envelope is not None and envelope.type in self.batch_handlers:
                    run.append((message, envelope))
                    continue
                failed += await apply_run(self, session, run)
                run = []
                error = await self.handle_one(session, message, envelope)
                if error is not None:
                    failed.append((message, error))
            failed += await apply_run(self, session, run)
            for message, error in failed:
                await dead_letters.record(session, self.service, message, error)
                dead.append(_with_error(message, self.service, error))
            if dead:
                # before the commit: if publishing fails, the batch is read again
                await self.bus.publish(
                    [Message(self.dead_letter_topic, m.key, m.value, m.headers) for m in dead]
                )
                DEAD_LETTERS.labels(self.service).inc(len(dead))

    def ignores(self, ce_type: str) -> bool:
        """Whether an event of ``ce_type`` is one this consumer knows and does not react to,
        in any of its newer forms (:meth:`handle_one` would read it and do nothing). An
        unknown type is not ignored: it is read, and parked."""
        ignored = self._ignored.get(ce_type)
        if ignored is None:
            ignored = (
                model_for(ce_type) is not None
                and ce_type not in self.handlers
                and ce_type not in self.batch_handlers
                and not any(newer in self.handlers for newer in newer_types(ce_type))
            )
            self._ignored[ce_type] = ignored
        return ignored

    async def _park(
        self, session: AsyncSession, message: Message, envelope: Envelope, reason: str
    ) -> None:
        log.warning("parking %s from %s: %s", envelope.type, message.topic, reason)
        EVENTS_IN.labels(self.service, envelope.type, "parked").inc()
        await _park_row(session, self.service, message, envelope, reason)

    async def replay_parked(self, limit: int = 1000) -> int:
        """Apply the parked events this consumer can now read; return how many. The rest
        stay parked."""
        async with transaction(self.sessions) as session:
            rows = (
                await session.execute(
                    text(
                        f'SELECT event_id, topic, key, body FROM "{self.service}".parked '
                        "ORDER BY parked_at, event_id LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"n": limit},
                )
            ).all()
            applied = 0
            for row in rows:
                message = Message(row.topic, row.key, bytes(row.body))
                envelope = Envelope.from_bytes(message.value)
                if not self._readable(envelope):
                    continue
                await session.execute(
                    text(f'DELETE FROM "{self.service}".parked WHERE event_id = :id'),
                    {"id": row.event_id},
                )
                error = await self.handle_one(session, message)
                if error is not None:
                    await dead_letters.record(session, self.service, message, error)
                    await self.bus.publish(
                        [
                            Message(
                                self.dead_letter_topic,
                                message.key,
                                message.value,
                                _with_error(message, self.service, error).headers,
                            )
                        ]
                    )
                applied += 1
        return applied

    def _readable(self, envelope: Envelope) -> bool:
        if envelope.type in self.handlers or model_for(envelope.type) is not None:
            return True
        return any(t in self.handlers for t, _ in upcasts(envelope.type, envelope.data))

    async def handle_one(
        self, session: AsyncSession, message: Message, envelope: Envelope | None = None
    ) -> str | None:
        """Apply one message (its ``envelope`` when read already); return an error text when
        it must be dead-lettered."""
        if envelope is None:
            try:
                envelope = Envelope.from_bytes(message.value)
            except (ValidationError, ValueError) as exc:
                log.warning("unreadable message on %s: %s", message.topic, exc)
                EVENTS_IN.labels(self.service, "unreadable", "dead_lettered").inc()
                return f"unreadable envelope: {exc}"
        handler = self.handlers.get(envelope.type)
        if handler is None:
            for ce_type, data in upcasts(envelope.type, envelope.data):
                if ce_type in self.handlers:
                    handler = self.handlers[ce_type]
                    envelope = envelope.model_copy(update={"type": ce_type, "data": data})
                    break
        if handler is None:
            if model_for(envelope.type) is None:
                await self._park(session, message, envelope, "unknown_type")
            return None  # a known event this service does not react to
        token = correlation_id.set(str(envelope.correlationid))
        try:
            inserted = await session.scalar(
                text(
                    f'INSERT INTO "{self.service}".inbox (event_id, type, topic, outcome) '
                    "VALUES (:id, :type, :topic, 'applied') "
                    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
                ),
                {"id": envelope.id, "type": envelope.type, "topic": message.topic},
            )
            if inserted is None:
                EVENTS_IN.labels(self.service, envelope.type, "duplicate").inc()
                return None
            last_error = ""
            for attempt in range(1, self.max_attempts + 1):
                try:
                    async with session.begin_nested():
                        await handler(session, envelope, payload_of(envelope))
                    EVENTS_IN.labels(self.service, envelope.type, "applied").inc()
                    return None
                except Exception as exc:
                    if is_transient(exc):
                        # not this message's fault: the whole batch is read again later
                        raise
                    last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "handler for %s failed (attempt %d/%d): %s",
                        envelope.type,
                        attempt,
                        self.max_attempts,
                        last_error,
                        extra={"event_id": str(envelope.id), "service": self.service},
                    )
                    if attempt < self.max_attempts:
                        await asyncio.sleep(self.retry_delay * attempt)
            await session.execute(
                text(
                    f"UPDATE \"{self.service}\".inbox SET outcome = 'dead_lettered', "
                    "error = :error WHERE event_id = :id"
                ),
                {"id": envelope.id, "error": last_error[:2000]},
            )
            EVENTS_IN.labels(self.service, envelope.type, "dead_lettered").inc()
            return last_error
        finally:
            correlation_id.reset(token)


async def _park_row(
    session: AsyncSession, service: str, message: Message, envelope: Envelope, reason: str
) -> None:
    await session.execute(
        text(
            f'INSERT INTO "{service}".parked (event_id, type, topic, key, body, reason) '
            "VALUES (:id, :type, :topic, :key, :body, :reason) ON CONFLICT DO NOTHING"
        ),
        {
            "id": envelope.id,
            "type": envelope.type,
            "topic": message.topic,
            "key": message.key,
            "body": message.value,
            "reason": reason,
        },
    )


def _with_error(message: Message, group: str, error: str) -> Message:
    headers = (
        *message.headers,
        ("ila-error", error[:2000].encode()),
        ("ila-consumer-group", group.encode()),
        ("ila-original-topic", message.topic.encode()),
    )
    return Message(message.topic, message.key, message.value, headers)
