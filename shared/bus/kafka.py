"""The Apache Kafka transport (aiokafka).

The producer is idempotent with ``acks=all``. Each consumer group reads with auto-commit
off and commits a batch's offsets only after its handler returned, i.e. after the effects
committed in PostgreSQL; when the handler fails the batch is read again. The commit is not
waited for: the next batch is handled while it goes to the broker, and the offsets of the
batches handled meanwhile go in one commit, at most one every ``commit_interval`` seconds
(the last ones on stop). A crash between a handled batch and its commit only delivers the
batch again, which the inbox ignores. Waiting for each commit cost every batch after it a
round trip to the group's coordinator (7 ms at the median at 100 enrolments/s over the
whole saga), and one commit per batch was a large part of the broker's work.

Each group's loop is supervised: a commit refused after a rebalance or a seek on a partition
that was just revoked is logged and the loop goes on (the records come again and the inbox
ignores what it already applied); anything else that ends the loop restarts the group's
consumer with a growing pause, counted in ``ila_consumer_restarts_total``, and the group
reads as down (``/readyz`` answers 503) until it runs again.

Clients refresh the cluster's metadata every ``metadata_max_age_ms`` (10 s, against
aiokafka's 5 min). When a broker dies and its partitions get new leaders, aiokafka's
consumer, resetting a partition's position, asks the old leader again and again
(``NotLeaderForPartitionError``) until its metadata is refreshed: with the default, a
partition could stay unread for five minutes after a broker restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError, MessageSizeTooLargeError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.bus.base import BatchHandler, Bus, Message
from shared.bus.partitioner import KeyPartitioner
from shared.bus.security import PLAINTEXT, KafkaSecurity
from shared.metrics import CONSUMER_RESTARTS

log = logging.getLogger(__name__)

FLUSH_TIMEOUT = 5.0  # seconds a stopping consumer waits for its last offsets' commit
MAX_REQUEST_BYTES = 1 << 20  # the largest message the producer sends (aiokafka's default)
LINGERING_FETCH_BYTES = 1 << 20  # a fetch a waiting group asks for: one partition's maximum


class KafkaBus(Bus):
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "ila",
        max_batch: int = 500,
        retry_backoff: float = 1.0,
        commit_interval: float = 0.2,
        metadata_max_age_ms: int = 10_000,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        super().__init__()
        self.bootstrap = bootstrap
        self.security = security
        self.client_id = client_id
        self.max_batch = max_batch
        self.retry_backoff = retry_backoff
        self.commit_interval = commit_interval
        self.metadata_max_age_ms = metadata_max_age_ms
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = KeyPartitioner()
        self._consumers: dict[str, AIOKafkaConsumer] = {}
        # for :meth:`backlog`, made on its first call: a topic's end offsets (a consumer
        # in no group) and other groups' committed offsets (an admin client)
        self._offsets: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.restarts: dict[str, int] = {}
        self._running: dict[str, bool] = {}
        self.max_restart_pause = 30.0

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            partitioner=self._partitioner,
            max_request_size=MAX_REQUEST_BYTES,
            metadata_max_age_ms=self.metadata_max_age_ms,
            **self.security.client_options(),
        )
        await self._producer.start()
        for group, topics, handler in self.subscriptions:
            self._consumers[group] = await self._new_consumer(group, topics)
            self.restarts.setdefault(group, 0)
            self._tasks.append(
                asyncio.create_task(self._supervise(group, topics, handler), name=f"kafka-{group}")
            )

    async def _new_consumer(self, group: str, topics: Sequence[str]) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-{group}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            metadata_max_age_ms=self.metadata_max_age_ms,
            **self._fetching(group),
            **self.security.client_options(),
        )
        await consumer.start()
        return consumer

    def _fetching(self, group: str) -> dict[str, int]:
        """A group that may wait (``fetch_wait_ms``) asks the broker for a full fetch, which
        the broker answers when the wait is over if it has less; any other group gets what
        there is at once."""
        wait = self.fetch_waits.get(group, 0)
        if not wait:
            return {}
        return {"fetch_min_bytes": LINGERING_FETCH_BYTES, "fetch_max_wait_ms": wait}

    async def _supervise(self, group: str, topics: Sequence[str], handler: BatchHandler) -> None:
        pause = self.retry_backoff
        while not self._stopping.is_set():
            self._running[group] = True
            try:
                await self._consume(group, self._consumers[group], handler)
                return  # stopping
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer group %s stopped; restarting it", group)
            self._running[group] = False
            self.restarts[group] += 1
            CONSUMER_RESTARTS.labels(group).inc()
            with contextlib.suppress(Exception):
                await self._consumers[group].stop()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_restart_pause)
            try:
                self._consumers[group] = await self._new_consumer(group, topics)
                pause = self.retry_backoff
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer group %s could not restart; trying again", group)

    def down(self) -> list[str]:
        """Consumer groups whose loop is not running (being restarted or dead)."""
        groups = [g for g, _, _ in self.subscriptions]
        dead = {t.get_name().removeprefix("kafka-") for t in self._tasks if t.done()}
        return [g for g in groups if g in dead or not self._running.get(g, False)]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for consumer in self._consumers.values():
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._consumers.clear()
        if self._offsets is not None:
            with contextlib.suppress(Exception):
                await self._offsets.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        self._offsets = self._admin = None
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def ping(self) -> bool:
        if self._producer is None:
            return False
        try:
            client: Any = self._producer.client
            return bool(await asyncio.wait_for(client.fetch_all_metadata(), 5))
        except Exception:
            return False

    async def publish(self, messages: Sequence[Message]) -> None:
        """Each partition's messages go to the producer as batches of their own, in the
        order given, and all of them are acknowledged before this returns.

        aiokafka's ``send`` takes one message at a time (a future, a lookup of the topic's
        partitions and an accumulator append each): 24-30 µs of CPU a message against the
        local broker, the larger part of the ledger relay's time in a bulk drain. Filling
        one ``BatchBuilder`` per partition and handing it over whole took 11-14 µs in the
        same measurement. The partition is the one ``send`` would choose
        (:class:`KeyPartitioner`, also the producer's own partitioner)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("bus not started")
        records = []
        for m in messages:
            key, headers = m.key.encode(), list(m.headers)
            # refused here, before anything is queued, as ``send`` refuses it: a batch the
            # broker refuses leaves the idempotent producer's sequence numbers behind, and
            # every later batch of the partition fails (OutOfOrderSequenceNumber)
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, m.value, headers)
            if size > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(
                    f"a message of {size} bytes exceeds the producer's {MAX_REQUEST_BYTES}"
                )
            records.append((m.topic, key, m.value, headers))
        partitions: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], BatchBuilder] = {}
        futures: list[asyncio.Future[Any]] = []
        for topic, key, value, headers in records:
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await producer.partitions_for(topic))
            slot = (topic, self._partitioner(key, known, known))
            batch = filling.get(slot)
            if batch is not None:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                    continue
                futures.append(await producer.send_batch(batch, topic, partition=slot[1]))
            # a new batch takes its first message whatever its size
            batch = filling[slot] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)
        for (topic, partition), batch in filling.items():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        if futures:
            await asyncio.gather(*futures)

    async def lag(self) -> dict[str, int]:
        lags: dict[str, int] = {}
        for group, consumer in self._consumers.items():
            total = 0
            for tp in consumer.assignment():
                with contextlib.suppress(Exception):
                    high = consumer.highwater(tp)
                    if high is not None:
                        total += max(0, high - await consumer.position(tp))
            lags[group] = total
        return lags

    async def backlog(self, topic: str, groups: Sequence[str]) -> int | None:
        """The most any of ``groups`` has left to commit on ``topic``: each partition's end
        offset less the group's committed one. A group that committed nothing on the topic
        yet (a service not started) is left out; None when none of them did."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        if self._offsets is None:
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-backlog",
                enable_auto_commit=False,
                metadata_max_age_ms=self.metadata_max_age_ms,
                **self.security.client_options(),
            )
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-backlog",
                metadata_max_age_ms=self.metadata_max_age_ms,
                **self.security.client_options(),
            )
            await offsets.start()
            try:
                await admin.start()
            except BaseException:
                await offsets.stop()
                raise
            self._offsets, self._admin = offsets, admin
        assert self._admin is not None
        partitions = await self._producer.partitions_for(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return None
        ends = await self._offsets.end_offsets(tps)
        worst: int | None = None
        for group in groups:
            committed = await self._admin.list_consumer_group_offsets(group, partitions=tps)
            known = {tp: m.offset for tp, m in committed.items() if m.offset >= 0}
            if known:
                behind = sum(max(0, end - known.get(tp, 0)) for tp, end in ends.items())
                worst = max(worst or 0, behind)
        return worst

    async def _consume(self, group: str, consumer: AIOKafkaConsumer, handler: BatchHandler) -> None:
        offsets = _Offsets(group, consumer, self.commit_interval)
        try:
            await self._batches(group, consumer, handler, offsets)
        finally:
            await offsets.flush()

    async def _batches(
        self, group: str, consumer: AIOKafkaConsumer, handler: BatchHandler, offsets: _Offsets
    ) -> None:
        while not self._stopping.is_set():
            records = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
            if not records:
                continue
            batch: list[Message] = []
            first: dict[TopicPartition, int] = {}
            last: dict[TopicPartition, int] = {}
            for tp, recs in records.items():
                for r in recs:
                    first.setdefault(tp, r.offset)
                    last[tp] = r.offset
                    batch.append(
                        Message(
                            topic=r.topic,
                            key=r.key.decode() if r.key else "",
                            value=r.value,
                            headers=tuple(r.headers or ()),
                            partition=r.partition,
                            offset=r.offset,
                        )
                    )
            try:
                await handler(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The effects did not commit: read the same records again after a pause.
                log.exception("consumer group %s failed a batch; retrying", group)
                for tp, offset in first.items():
                    try:
                        consumer.seek(tp, offset)
                    except IllegalStateError:
                        # revoked meanwhile: its new owner reads from the committed offset
                        log.warning("group %s lost %s before it could re-read it", group, tp)
                await asyncio.sleep(self.retry_backoff)
                continue
            offsets.handled({tp: offset + 1 for tp, offset in last.items()})


class _Offsets:
    """A group's handled offsets, committed in the background: at most one commit in flight,
    at most one every ``interval`` seconds, each carrying every offset handled before it."""

    def __init__(self, group: str, consumer: AIOKafkaConsumer, interval: float) -> None:
        self.group = group
        self.consumer = consumer
        self.interval = interval
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._last = -interval
        self._now = asyncio.Event()  # commit what is pending without waiting for the interval

    def handled(self, offsets: dict[TopicPartition, int]) -> None:
        self._pending.update(offsets)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit(), name=f"offsets-{self.group}")

    async def flush(self) -> None:
        """Commit what is pending now (the loop ends: stop, or a restart)."""
        self._now.set()
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit())
        if self._task is not None:
            # bounded: a broker gone away must not hold up a stop
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FLUSH_TIMEOUT):
                    await asyncio.shield(self._task)

    async def _commit(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            pause = self._last + self.interval - loop.time()
            if pause > 0 and not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._now.wait()
            offsets, self._pending = self._pending, {}
            self._last = loop.time()
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # a rebalance took the partitions: the effects are committed and the inbox
                # will ignore the records when they are delivered again
                log.warning("group %s could not commit after a rebalance: %s", self.group, exc)
            except Exception as exc:  # the records come again: late, not lost
                log.warning("group %s could not commit its offsets: %s", self.group, exc)
