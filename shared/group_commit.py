"""Group commit: requests that arrive together are decided together, in one transaction.

A route ``submit``s its request's work with its ``Idempotency-Key`` claim and ``respond``
(the reply an outcome calls for). A batch closes when it holds ``size`` requests or
``window`` seconds after its first one arrived (at most ``concurrency`` batches run at
once; what a subclass locks it locks in key order, so two batches never deadlock), and runs
in one transaction:

1. the batch's keys are claimed in one statement; a key already used answers with the
   stored reply (or 422 for another request) and its work is not done;
2. :meth:`GroupCommit.decide` decides every other request's work together (a subclass's
   statements for the whole batch); a request the rules refuse answers its caller alone;
3. replies are stored with their keys, and the keys of refused requests forgotten (they
   changed nothing, so they may be retried with the same key), two statements at most.

Nothing is answered before the transaction committed. A transient database failure runs the
batch again (up to ``attempts`` times); any other failure of the batch as a whole runs each
of its requests as a batch of one, so that it fails its own caller only. A key used twice
in one batch waits for the next batch (the second request then gets the first one's
reply), and so does a request whose :meth:`GroupCommit.lane` an earlier request of the
batch holds (work that must see what the other decided).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import UnitOfWork, is_transient
from shared.errors import DomainError
from shared.idempotency import Claim, Reply, claim_keys, settle_keys

log = logging.getLogger(__name__)

W = TypeVar("W")  # a request's work
O = TypeVar("O")  # what deciding it gives  # noqa: E741


@dataclass
class _Item(Generic[W, O]):
    work: W
    claim: Claim | None
    respond: Callable[[O], Reply]
    future: asyncio.Future[Reply] = field(repr=False)
    answer: Reply | BaseException | None = None
    owns_key: bool = False  # this batch inserted the key (not a replay)


class GroupCommit(ABC, Generic[W, O]):
    """Batches of requests, each batch decided in one transaction (see the module doc)."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        service: str,
        size: int = 256,
        window: float = 0.002,
        attempts: int = 5,
        concurrency: int = 2,
    ) -> None:
        self.uow = uow
        self.service = service
        self.size = size
        self.window = window
        self.attempts = attempts
        self.concurrency = concurrency
        self._queue: asyncio.Queue[_Item[W, O]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # committed or failed, for tests and metrics

    @abstractmethod
    async def decide(self, session: AsyncSession, works: Sequence[W]) -> list[O | DomainError]:
        """Decide and write every one of ``works`` in ``session``'s transaction: what each
        gave, or the refusal of those the rules refused (which wrote nothing, or only what
        the refusal itself records, such as a proposal expired by a late consent: that is
        committed with the batch, and the refused request's key is forgotten)."""

    def lane(self, work: W) -> Hashable | None:
        """Work of the same lane is never decided in the same batch (None: any batch)."""
        return None

    async def submit(
        self, work: W, respond: Callable[[O], Reply], *, claim: Claim | None = None
    ) -> Reply:
        """The reply to ``work`` once its batch committed (or the error that refused it)."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self.run(), name=f"{self.service}-group-commit")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(work, claim, respond, future))
        return await future

    async def serve(self) -> None:
        """Run as the service's job (cancelled when the service stops)."""
        self._runner = asyncio.current_task()
        await self.run()

    async def run(self) -> None:
        """Take batches off the queue and commit them, at most ``concurrency`` at a time
        (while all are busy the next batch grows), until cancelled."""
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        deferred: list[_Item[W, O]] = []
        try:
            while True:
                await slots.acquire()
                batch = deferred or [await self._queue.get()]
                deadline = time.monotonic() + self.window
                while len(batch) < self.size:
                    if self._queue.empty():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(left):
                                batch.append(await self._queue.get())
                        continue
                    batch.append(self._queue.get_nowait())
                batch, deferred = self._split(batch)
                self.batches += 1
                task = asyncio.create_task(self._guarded(batch))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            for task in running:
                task.cancel()

    async def _guarded(self, batch: list[_Item[W, O]]) -> None:
        try:
            await self._commit(batch)
        except BaseException as exc:  # a bug or a stop: answer every caller, never hang one
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("group commit failed")
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(
                        exc if isinstance(exc, Exception) else RuntimeError("stopped")
                    )
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def _commit(self, batch: list[_Item[W, O]]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.uow() as session:
                    await self._decide(session, batch)
                break
            except Exception as exc:
                if is_transient(exc) and attempt < self.attempts:
                    await asyncio.sleep(0.01 * attempt)
                    continue
                if len(batch) > 1 and not is_transient(exc):
                    log.warning("a batch of %d failed, one at a time: %s", len(batch), exc)
                    for item in batch:
                        await self._commit([item])
                    return
                for item in batch:
                    item.answer = exc
                break
        for item in batch:
            if item.future.done():
                continue  # the caller went away
            if isinstance(item.answer, BaseException):
                item.future.set_exception(item.answer)
            else:
                assert item.answer is not None
                item.future.set_result(item.answer)

    async def _decide(self, session: AsyncSession, batch: list[_Item[W, O]]) -> None:
        for item in batch:
            item.answer, item.owns_key = None, False
        claimed = [i for i in batch if i.claim is not None]
        held = await claim_keys(session, self.service, [i.claim for i in claimed if i.claim])
        for item, stored in zip(claimed, held, strict=True):
            item.answer, item.owns_key = stored, stored is None
        todo = [i for i in batch if i.answer is None]
        outcomes = await self.decide(session, [i.work for i in todo]) if todo else []
        for item, outcome in zip(todo, outcomes, strict=True):
            try:
                if isinstance(outcome, DomainError):
                    raise outcome
                item.answer = item.respond(outcome)
            except DomainError as refused:
                item.answer = refused
        owned = [i for i in batch if i.owns_key and i.claim is not None]
        await settle_keys(
            session,
            self.service,
            [(i.claim, i.answer) for i in owned if i.claim and isinstance(i.answer, Reply)],
            [i.claim for i in owned if i.claim and not isinstance(i.answer, Reply)],
        )

    def _split(self, batch: list[_Item[W, O]]) -> tuple[list[_Item[W, O]], list[_Item[W, O]]]:
        """The batch with each key and each lane once, and the items that wait for the
        next batch (a key or a lane an earlier item holds)."""
        keys: set[tuple[str, str]] = set()
        lanes: set[Hashable] = set()
        now, later = [], []
        for item in batch:
            key = (item.claim.scope, item.claim.key) if item.claim else None
            lane = self.lane(item.work)
            if (key is not None and key in keys) or (lane is not None and lane in lanes):
                later.append(item)
                continue
            if key is not None:
                keys.add(key)
            if lane is not None:
                lanes.add(lane)
            now.append(item)
        return now, later


__all__ = ["GroupCommit"]
