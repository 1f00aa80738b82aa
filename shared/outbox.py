"""Transactional outbox and its relay.

A service writes its events with :meth:`Outbox.add` in the same transaction as the state
change. The :class:`Relay` publishes unsent rows in order, waits until the bus accepted
them, then marks them sent. A crash between publishing and marking only republishes
(consumers' inboxes make that harmless); nothing committed is ever lost.

Rows written as bulk (a yearly allocation's grants, millions at once; a wallet's opening)
give way to the others: each batch takes the rows that are not bulk first, each after the
unsent bulk rows of its key that precede it, then the oldest bulk rows. Each key's rows
keep their order, which is all a consumer may rely on (the bus keeps none between
partitions either); a learner's reservation written during an allocation is published in
the next batch, not after the allocation's backlog. On a bus that keeps a backlog of its own
(Kafka), the relay also holds bulk rows back while the consumer groups that read its topic
are more than ``max_bulk_lag`` events behind: a topic is read in order, and a reservation
published behind a million grants would wait for all of them in every consumer. The
backlog stays in the outbox, where the rows that answer people pass it.

The relay never blocks on one row: a row larger than the bus accepts is parked at once, and
a row the bus refuses for a reason that is not transient (a broker down or a leader moving is
transient, and only waits) is retried ``park_after`` times, then parked with its last error,
logged, counted in ``ila_outbox_parked_total`` and shown by ``/readyz``; the rows after it
flow on. Parked rows stay in the table (``parked_at``) for an operator to inspect and
re-queue with :meth:`Relay.requeue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple, overload

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import TYPE_HEADER, Bus, Message, topic_for
from shared.db import executemany, pooled_driver
from shared.event_context import EventContext as EventContext  # where callers find it
from shared.events import Envelope, Event
from shared.events.base import actor_fields
from shared.kernel_ddl import outbox_channel
from shared.listen import ChannelListener, announce
from shared.metrics import (
    EVENTS_OUT,
    OUTBOX_BACKLOG,
    OUTBOX_BULK_BEHIND,
    OUTBOX_PARKED,
    OUTBOX_PARKED_NOW,
    RELAY_RESTARTS,
)
from shared.pseudonym import pseudonymous_actor

log = logging.getLogger(__name__)

# Kafka's default limit for one record batch is 1 MiB (message.max.bytes, and the producer's
# max.request.size): an event is refused well before, leaving room for key and headers.
DEFAULT_MAX_EVENT_BYTES = 900_000
# how often a relay that hears its outbox's channel still looks, in case a notice was lost
LISTENING_POLL = 5.0
# how often a relay that publishes bulk rows measures how far behind its topic's readers are;
# how long a measure may take, and how long after one that failed it tries again
BULK_CHECK = 0.2
BULK_MEASURE_TIMEOUT = 2.0
BULK_RETRY = 10.0


def is_transient(exc: BaseException) -> bool:
    """A failure that passes by itself (broker unreachable, leader moving, timeout): the
    relay waits and retries without counting it against the row."""
    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    if isinstance(exc, KafkaTimeoutError | KafkaConnectionError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


class Outbox:
    """A service's outbox. With ``actor_pepper`` (``ILA_ACTOR_PEPPER``) the actor of every
    event, in its envelope and in each of its :data:`shared.events.base.Actor` fields, is a
    pseudonym (:mod:`shared.pseudonym`), never the caller's token subject."""

    def __init__(
        self, service: str, topic: str | None = None, *, actor_pepper: str | None = None
    ) -> None:
        self.service = service
        self.topic = topic or topic_for(service)
        self.source = f"/ila/{service}"
        self.actor_pepper = actor_pepper
        self._wake = asyncio.Event()
        self.publishing = False  # this process's relay was the leader at its last try
        self.unannounced = False  # rows committed since, that no other process heard of

    @overload
    def actor(self, actor: str) -> str: ...
    @overload
    def actor(self, actor: None) -> None: ...
    def actor(self, actor: str | None) -> str | None:
        """``actor`` as events record it."""
        if self.actor_pepper is None:
            return actor
        return pseudonymous_actor(actor, self.actor_pepper)

    def pseudonymous(self, payload: Event) -> Event:
        """``payload`` with a pseudonym in each of its actor fields."""
        fields = actor_fields(type(payload))
        if self.actor_pepper is None or not fields:
            return payload
        return payload.model_copy(update={f: self.actor(getattr(payload, f)) for f in fields})

    def envelope(self, payload: Event, ctx: EventContext) -> Envelope:
        return Envelope.wrap(
            self.pseudonymous(payload),
            source=self.source,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            actor=self.actor(ctx.actor),
        )

    async def add(
        self,
        session: AsyncSession,
        payloads: Sequence[Event],
        ctx: EventContext,
        *,
        bulk: bool = False,
    ) -> list[Envelope]:
        """Stage events in the caller's transaction; ``bulk`` ones give way to the others
        (see :class:`Relay`)."""
        envelopes = [self.envelope(p, ctx) for p in payloads]
        await self.add_envelopes(session, envelopes, bulk=bulk)
        return envelopes

    async def add_envelopes(
        self, session: AsyncSession, envelopes: Sequence[Envelope], *, bulk: bool = False
    ) -> None:
        if not envelopes:
            return
        await executemany(
            session,
            f'INSERT INTO "{self.service}".outbox (event_id, topic, key, type, body, bulk) '
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(e.id, self.topic, e.subject, e.type, e.to_bytes(), bulk) for e in envelopes],
        )
        # wake the relay once the transaction is over (it re-reads committed rows only)
        session.sync_session.info.setdefault("outboxes", set()).add(self)

    def rows(self, envelopes: Sequence[Envelope]) -> list[dict[str, Any]]:
        """The outbox rows of ``envelopes``, for a caller that writes them in a statement of
        its own (then :meth:`staged`)."""
        return [
            {"event_id": e.id, "topic": self.topic, "key": e.subject, "type": e.type}
            | {"body": e.to_bytes(), "bulk": False}
            for e in envelopes
        ]

    def staged(self, session: AsyncSession) -> None:
        """Rows were written in ``session``'s transaction: wake the relay once it is over."""
        session.sync_session.info.setdefault("outboxes", set()).add(self)

    def wake(self) -> None:
        self._wake.set()

    def committed(self, engine: AsyncEngine | None) -> None:
        """Rows staged on ``engine`` committed: wake this process's relay and, unless that
        relay is the one publishing (it was the leader at its last try), announce them on
        the service's channel to the relays of other processes. A relay that finds another
        one publishing announces in its turn (:meth:`Relay.publish_once`), so rows a
        leader's last batch missed never wait for its poll."""
        self.wake()
        if self.publishing:
            # this process's relay publishes the outbox: nobody else needs to hear, unless
            # another relay turns out to be publishing when it tries (it announces then)
            self.unannounced = True
            return
        announce(engine, outbox_channel(self.service))

    async def wait(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races with the wake-up, and the relay would then never stop
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()


class OutboxRow(NamedTuple):
    """An outbox row the relay publishes."""

    id: int
    topic: str
    key: str
    type: str
    body: bytes
    attempts: int
    bulk: bool


_LEADER = "current_setting('ila.relay_leader', true) = 'true'"
_NEXT_ROWS = (
    "WITH i AS (SELECT id, topic, key, type, body, attempts, bulk FROM {outbox} "
    f"WHERE sent_at IS NULL AND parked_at IS NULL AND NOT bulk AND {_LEADER} "
    "ORDER BY id LIMIT $1), "
    "k AS (SELECT key, max(id) AS last FROM i GROUP BY key), "
    "e AS (SELECT o.id, o.topic, o.key, o.type, o.body, o.attempts, o.bulk FROM {outbox} o "
    "JOIN k ON o.key = k.key AND o.id < k.last "
    "WHERE o.sent_at IS NULL AND o.parked_at IS NULL AND o.bulk), "
    "b AS (SELECT id, topic, key, type, body, attempts, bulk FROM {outbox} "
    f"WHERE sent_at IS NULL AND parked_at IS NULL AND bulk AND {_LEADER} ORDER BY id "
    "LIMIT least(greatest($1 - (SELECT count(*) FROM i), 0), $2)), "
    "r AS (SELECT * FROM i UNION ALL SELECT * FROM e UNION ALL SELECT * FROM b) "
    f"SELECT {_LEADER} AS leader, r.* FROM (SELECT 1) AS one LEFT JOIN r ON true ORDER BY r.id"
)
"""The relay's next batch (:meth:`Relay.publish_once`): ``i`` the rows that are not bulk, ``e`` the
bulk rows that precede one of them under its key, ``b`` the oldest bulk rows, only while
``i`` left room (when ``i`` is full, a bulk row of ``b`` could pass a row of its key that
``i`` did not take) and at most ``$2`` of them (the topic's readers are behind). A bulk row
in both ``e`` and ``b`` comes twice, once kept. Each row says whether this relay leads (took
the lock in the transaction's first statement, :data:`_BEGIN`); one that does not reads no
row, and gets one of nulls that says so, as it does when there is nothing to publish."""

_BEGIN = (
    "BEGIN; SELECT set_config('ila.relay_leader', "
    "pg_try_advisory_xact_lock(hashtext('relay:{schema}'))::text, true)"
)
"""A relay's transaction opens, in one round trip, with the lock that makes it the one relay
of its service that publishes, until it commits. The lock is taken in a statement of its
own, before the rows are read: the read's snapshot then sees every row the previous
leader marked sent before it let go."""


class Relay:
    """Publishes a service's outbox to the bus, one batch at a time, in id order, bulk rows
    (the ``bulk`` column: a yearly allocation's, an import's) after the others: a backlog
    of them does not hold back the events that answer people.

    ``readers``: the consumer groups that read the outbox's topic. While bulk rows flow, the
    relay measures every :data:`BULK_CHECK` seconds how far behind the furthest of them is
    (:meth:`Bus.backlog`), counts what it published since, and publishes bulk rows only up
    to ``max_bulk_lag`` (0: no bound).

    ``pipeline_seconds``: how long one transaction of :meth:`publish` may go on taking full
    batches (a backlog) one after another, each read while the last is with the bus (0:
    one batch a transaction). It bounds what a crash publishes again."""

    def __init__(
        self,
        outbox: Outbox,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.5,
        park_after: int = 5,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        readers: Sequence[str] = (),
        max_bulk_lag: int = 0,
        pipeline_seconds: float = 1.0,
    ) -> None:
        self.outbox = outbox
        self.sessions = sessions
        self.bus = bus
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.park_after = max(1, park_after)
        self.max_event_bytes = max_event_bytes
        self._next_rows = _NEXT_ROWS.format(outbox=f'"{outbox.service}".outbox')
        self._begin = _BEGIN.format(schema=outbox.service)
        self._engine: AsyncEngine = sessions.kw["bind"]
        self.readers = tuple(readers)
        self.max_bulk_lag = max_bulk_lag
        self.pipeline_seconds = pipeline_seconds
        self._bulk_flowing = False  # the last batch had bulk rows, or was held back
        self._behind: int | None = None  # the readers' backlog: measured, plus sent since
        self._measure_at = 0.0  # when to measure it again
        self._complained_at = -60.0
        self.holding = False  # the last batch's bulk rows were bounded: the readers are behind
        self._task: asyncio.Task[None] | None = None
        self._listener = ChannelListener(
            sessions, outbox_channel(outbox.service), outbox.wake, outbox.service
        )
        self.fail_after_publish = False  # test hook: simulate a crash before marking

    async def publish_once(self) -> int:
        """Publish one batch; return how many rows it handled (published or parked; 0 when
        idle or not leader). A transient failure of the bus is raised (the caller waits).

        Three round trips a batch, on the pool's driver connection: the transaction opened
        with the leader's lock (:data:`_BEGIN`), the rows read, and the rows marked sent
        with the ``COMMIT``."""
        return await self.publish(0.0)

    async def publish(self, seconds: float) -> int:
        """Publish the next batch, as :meth:`publish_once`; while the batches come full (a
        backlog), go on with the next ones for up to ``seconds``, in the same transaction
        and so under the same lock: each is marked sent as it is read, and handed to the bus
        while the next one is read and marked, and the transaction commits once the bus took
        the last. Reading and marking then no longer hold up the bus, which is the slowest
        of the three. The marks are only durable with the commit, after the bus took every
        batch, so a crash or a transient failure of the bus before it publishes them all
        again (consumers' inboxes make that harmless). Return how many rows were handled."""
        schema = self.outbox.service
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        room = await self._bulk_room()
        async with pooled_driver(self._engine) as connection:
            # Only one relay per service publishes at a time, which keeps per-key order
            # even with several replicas running.
            await connection.execute(self._begin)
            batch = await self._read(connection, room)
            if batch is None:
                await connection.execute("COMMIT")
                # another relay publishes: rows this process committed unannounced may have
                # missed its batch (a notice heard from others is not passed on: two
                # waiting relays would wake each other for ever)
                if self.outbox.unannounced:
                    self.outbox.unannounced = False
                    announce(self._engine, outbox_channel(schema))
                return 0
            self.outbox.unannounced = False  # the batch reads every row committed so far
            if not batch:
                await connection.execute("COMMIT")
                OUTBOX_BACKLOG.labels(schema).set(0)
                return 0
            sendable = await self._sendable(connection, batch)
            handled = len(batch) - len(sendable)
            if self._goes_on(batch, deadline):
                await self._mark(connection, [r.id for r in sendable], sent=True)
                return handled + await self._pipeline(connection, batch, sendable, deadline)
            try:
                await self._publish(sendable)
                sent = {r.id for r in sendable}
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                # one row (or more) is refused: find which, one at a time, in order
                sent = set(await self._one_by_one(connection, sendable))
            if self.fail_after_publish:
                raise RelayCrash("relay stopped between publish and mark")
            # the ids are the table's own integers, written out: the mark and the COMMIT
            # go in one round trip
            marked = ",".join(str(int(i)) for i in sorted(sent))
            await connection.execute(
                f'UPDATE "{schema}".outbox SET sent_at = now() '
                f"WHERE id = ANY('{{{marked}}}'::bigint[]); COMMIT"
            )
            self._count(sendable, sent)
        return handled + len(sent)

    async def _pipeline(
        self,
        connection: Any,
        batch: list[OutboxRow],
        sendable: list[OutboxRow],
        deadline: float,
    ) -> int:
        """:meth:`publish` past its first batch, whose ``sendable`` rows are marked: each
        batch goes to the bus while the next one is read and marked; the transaction
        commits once the bus took the last. Return how many rows were handled."""
        handled = 0
        while batch:
            delivery = asyncio.create_task(self._publish(sendable))
            try:
                following: list[OutboxRow] = []
                if self._goes_on(batch, deadline):
                    following = await self._read(connection, await self._bulk_room()) or []
                after = await self._sendable(connection, following)
                handled += len(following) - len(after)
                await self._mark(connection, [r.id for r in after], sent=True)
            except BaseException:
                delivery.cancel()
                with contextlib.suppress(BaseException):
                    await delivery
                raise
            try:
                await delivery
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                # one row (or more) is refused: neither the batch's rows nor the next
                # batch's are sent; find which are, one at a time, in order
                unsent = [r.id for r in sendable] + [r.id for r in after]
                await self._mark(connection, unsent, sent=False)
                sent = set(await self._one_by_one(connection, sendable))
                await self._mark(connection, sorted(sent), sent=True)
                await connection.execute("COMMIT")
                self._count(sendable, sent)
                return handled + len(sent)
            if self.fail_after_publish:
                raise RelayCrash("relay stopped between publish and commit")
            self._count(sendable, {r.id for r in sendable})
            handled += len(sendable)
            batch, sendable = following, after
        await connection.execute("COMMIT")
        return handled

    def _goes_on(self, batch: Sequence[OutboxRow], deadline: float) -> bool:
        """Whether :meth:`publish` reads another batch in the same transaction after
        ``batch``: it came full, time is left, and it holds no bulk row bounded by its
        readers' measured backlog (over Kafka, a relay faster than them only fills their
        topic up to ``max_bulk_lag`` sooner, and every event that answers a person then
        waits behind that many bulk events in each reader; in process there is no backlog)."""
        if len(batch) < self.batch_size or asyncio.get_running_loop().time() >= deadline:
            return False
        return self._behind is None or not any(r.bulk for r in batch)

    async def _read(self, connection: Any, room: int) -> list[OutboxRow] | None:
        """The next batch (:data:`_NEXT_ROWS`); None when another relay leads."""
        found = await connection.fetch(self._next_rows, self.batch_size, room)
        leader = bool(found[0]["leader"])
        self.outbox.publishing = leader
        if not leader:
            return None
        unique = {r["id"]: r for r in found if r["id"] is not None}  # a row of e and b: once
        rows = [OutboxRow(*r[1:]) for r in unique.values()]
        self.holding = room < self.batch_size
        self._bulk_flowing = self.holding or any(r.bulk for r in rows)
        return rows

    async def _sendable(self, connection: Any, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """``rows`` but those too large for the bus, which are parked at once."""
        sendable = []
        for r in rows:
            if len(r.body) > self.max_event_bytes:
                error = f"event of {len(r.body)} bytes exceeds the limit of {self.max_event_bytes}"
                await self._park(connection, r, error)
            else:
                sendable.append(r)
        return sendable

    async def _mark(self, connection: Any, ids: Sequence[int], *, sent: bool) -> None:
        """Rows marked sent (or not sent again), in the relay's transaction."""
        if ids:
            await connection.execute(
                f'UPDATE "{self.outbox.service}".outbox SET sent_at = '
                f"{'now()' if sent else 'NULL'} WHERE id = ANY($1::bigint[])",
                list(ids),
            )

    def _count(self, rows: Sequence[OutboxRow], sent: set[int]) -> None:
        for ce_type, n in Counter(r.type for r in rows if r.id in sent).items():
            EVENTS_OUT.labels(self.outbox.service, ce_type).inc(n)
        if self._behind is not None:
            self._behind += len(sent)

    async def _bulk_room(self) -> int:
        """How many of the oldest bulk rows the next batch may take: ``batch_size``, or,
        while bulk rows flow to readers that are behind, what ``max_bulk_lag`` leaves."""
        if not (self.max_bulk_lag and self.readers and self._bulk_flowing):
            self._behind = None
            return self.batch_size
        now = asyncio.get_running_loop().time()
        if now >= self._measure_at:
            self._measure_at = now + BULK_CHECK
            try:
                async with asyncio.timeout(BULK_MEASURE_TIMEOUT):
                    self._behind = await self.bus.backlog(self.outbox.topic, self.readers)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # not knowing is no reason to stop an allocation, nor to slow the relay
                # down with a measure that fails at every batch: the bound is let go
                # until the next try
                self._behind = None
                self._measure_at = now + BULK_RETRY
                if now - self._complained_at >= 60:
                    self._complained_at = now
                    log.warning(
                        "outbox relay of %s cannot tell how far behind %s are (%s); its bulk "
                        "rows are not held back for the next %.0f s",
                        self.outbox.service,
                        ", ".join(self.readers),
                        f"{type(exc).__name__}: {exc}",
                        BULK_RETRY,
                    )
            if self._behind is not None:
                OUTBOX_BULK_BEHIND.labels(self.outbox.service).set(self._behind)
        if self._behind is None:
            return self.batch_size
        return max(0, min(self.batch_size, self.max_bulk_lag - self._behind))

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            await self.bus.publish(
                [
                    Message(r.topic, r.key, bytes(r.body), ((TYPE_HEADER, r.type.encode()),))
                    for r in rows
                ]
            )

    async def _one_by_one(self, connection: Any, rows: Sequence[OutboxRow]) -> list[int]:
        """Publish ``rows`` singly; the first that fails counts an attempt (parked after
        ``park_after``, then the rest go on; else the rest wait behind it, keeping order)."""
        sent: list[int] = []
        for r in rows:
            try:
                await self._publish([r])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    break
                error = f"{type(exc).__name__}: {exc}"[:2000]
                if r.attempts + 1 >= self.park_after:
                    await self._park(connection, r, error)
                    continue
                await connection.execute(
                    f'UPDATE "{self.outbox.service}".outbox '
                    "SET attempts = attempts + 1, last_error = $1 WHERE id = $2",
                    error,
                    r.id,
                )
                log.warning(
                    "outbox relay of %s: event %s (row %s) refused (%s), attempt %s of %s",
                    self.outbox.service,
                    r.type,
                    r.id,
                    error,
                    r.attempts + 1,
                    self.park_after,
                )
                break
            sent.append(r.id)
        return sent

    async def _park(self, connection: Any, row: OutboxRow, error: str) -> None:
        schema = self.outbox.service
        await connection.execute(
            f'UPDATE "{schema}".outbox SET parked_at = now(), attempts = attempts + 1, '
            "last_error = $1 WHERE id = $2",
            error,
            row.id,
        )
        OUTBOX_PARKED.labels(schema).inc()
        log.error(
            "outbox relay of %s parked event %s (row %s): %s; the events after it flow on",
            schema,
            row.type,
            row.id,
            error,
            extra={"alert": "outbox_parked", "service": schema, "outbox_id": row.id},
        )

    async def parked(self) -> int:
        """How many rows are parked (``/readyz`` and ``/metrics`` show it)."""
        async with self.sessions() as session:
            n = await session.scalar(
                text(
                    f'SELECT count(*) FROM "{self.outbox.service}".outbox '
                    "WHERE parked_at IS NOT NULL"
                )
            )
        OUTBOX_PARKED_NOW.labels(self.outbox.service).set(n or 0)
        return int(n or 0)

    async def requeue(self, outbox_id: int) -> bool:
        """An operator fixed the cause: the parked row is published again (at the end of the
        queue's current order, by id). False when no such parked row exists."""
        async with self.sessions() as session, session.begin():
            done = await session.execute(
                text(
                    f'UPDATE "{self.outbox.service}".outbox SET parked_at = NULL, attempts = 0 '
                    "WHERE id = :id AND parked_at IS NOT NULL AND sent_at IS NULL"
                ),
                {"id": outbox_id},
            )
        self.outbox.wake()
        return bool(getattr(done, "rowcount", 0))

    async def backlog(self) -> int:
        async with self.sessions() as session:
            n = await session.scalar(
                text(
                    f'SELECT count(*) FROM "{self.outbox.service}".outbox '
                    "WHERE sent_at IS NULL AND parked_at IS NULL"
                )
            )
        OUTBOX_BACKLOG.labels(self.outbox.service).set(n or 0)
        return int(n or 0)

    async def drain(self) -> int:
        total = 0
        while n := await self.publish(self.pipeline_seconds):
            total += n
        return total

    async def run(self) -> None:
        pause = 1.0
        try:
            while True:
                try:
                    listening = await self._listener.ensure()
                    published = await self.publish(self.pipeline_seconds)
                    if published < self.batch_size:
                        # woken at once by a commit in this process, or by the outbox's
                        # channel for rows other processes wrote (CLI commands, replicas);
                        # the timeout is a safety net where the channel is not heard. Bulk
                        # rows held back are looked at again once the readers may have caught up
                        await self.outbox.wait(
                            BULK_CHECK
                            if self.holding
                            else LISTENING_POLL
                            if listening
                            else self.idle_interval
                        )
                    pause = 1.0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay of %s failed; retrying", self.outbox.service)
                    RELAY_RESTARTS.labels(self.outbox.service).inc()
                    self.outbox.publishing = False
                    await self._listener.close()
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 30.0)
        finally:
            self.outbox.publishing = False
            await self._listener.close()

    @property
    def listening(self) -> bool:
        """Hearing the outbox's channel (else it polls every ``idle_interval``)."""
        return self._listener.listening

    def alive(self) -> bool:
        """Started and still running (readiness)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"relay-{self.outbox.service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RelayCrash(RuntimeError):
    pass
