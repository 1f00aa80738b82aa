"""Group commit: commands that arrive together are decided together.

Callers (the HTTP grant route) ``submit`` a command with its context and, optionally, its
``Idempotency-Key`` claim, a read-only ``check`` (the caller's scope) and ``respond`` (the
reply an outcome calls for). A batch closes when it holds ``size`` commands or ``window``
seconds after its first one arrived (at most ``concurrency`` batches run at once: their
heads are locked in account order, so they never deadlock), and runs in one transaction:

1. the batch's keys are claimed in one statement; a key already used answers with the
   stored reply (or 422 for another request) and its command is not run;
2. each ``check`` runs (a :class:`GroupedCheck` together with the others of its class, one
   query for all of them); one that refuses answers its caller alone;
3. ``wallets.execute_many`` decides every command (heads locked in account order, one
   statement per table); a refused command answers its caller alone;
4. replies are stored with their keys, and the keys of refused requests forgotten (they
   changed nothing, so they may be retried with the same key), two statements at most.

Nothing is answered before the transaction committed. A transient database failure runs the
batch again (up to ``attempts`` times); any other failure of the batch as a whole runs each
of its commands as a batch of one, so that it fails its own caller only. A key used twice in
one batch waits for the next (the second request then gets the first one's reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import Command
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import Order, Outcome, execute_many
from shared.db import UnitOfWork, is_transient
from shared.errors import DomainError
from shared.idempotency import Claim, Reply, claim_keys, settle_keys
from shared.outbox import EventContext

log = logging.getLogger(__name__)


class GroupedCheck(ABC):
    """A read-only check of one request that runs together with the others of its class in
    a batch, so that a batch of grants asks the database once, not once per grant."""

    @classmethod
    @abstractmethod
    async def run_all(
        cls, session: AsyncSession, checks: Sequence[GroupedCheck]
    ) -> list[DomainError | None]:
        """Each check's refusal (None: it passes), in the order given."""


Check = Callable[[AsyncSession], Awaitable[None]] | GroupedCheck
Respond = Callable[[Outcome], Reply]


@dataclass
class _Item:
    command: Command
    ctx: EventContext
    claim: Claim | None
    check: Check | None
    respond: Respond
    future: asyncio.Future[Reply] = field(repr=False)
    answer: Reply | BaseException | None = None
    owns_key: bool = False  # this batch inserted the key (not a replay)


def _outcome_reply(outcome: Outcome) -> Reply:
    return Reply(200, outcome, {})


class GroupCommitter:
    def __init__(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        *,
        service: str = "ledger",
        size: int = 256,
        window: float = 0.002,
        attempts: int = 5,
        concurrency: int = 2,
    ) -> None:
        self.uow = uow
        self.ledger = ledger
        self.service = service
        self.size = size
        self.window = window
        self.attempts = attempts
        self.concurrency = concurrency
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # committed or failed, for tests and metrics

    async def submit(
        self,
        command: Command,
        ctx: EventContext,
        *,
        claim: Claim | None = None,
        check: Check | None = None,
        respond: Respond = _outcome_reply,
    ) -> Reply:
        """The reply to ``command`` once its batch committed (or the error that refused it)."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self.run(), name=f"{self.service}-group-commit")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(command, ctx, claim, check, respond, future))
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
        deferred: list[_Item] = []
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
                batch, deferred = _distinct_keys(batch)
                self.batches += 1
                task = asyncio.create_task(self._guarded(batch))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            for task in running:
                task.cancel()

    async def _guarded(self, batch: list[_Item]) -> None:
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

    async def _commit(self, batch: list[_Item]) -> None:
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

    async def _decide(self, session: AsyncSession, batch: list[_Item]) -> None:
        for item in batch:
            item.answer, item.owns_key = None, False
        claimed = [i for i in batch if i.claim is not None]
        held = await claim_keys(session, self.service, [i.claim for i in claimed if i.claim])
        for item, stored in zip(claimed, held, strict=True):
            item.answer, item.owns_key = stored, stored is None
        grouped: dict[type[GroupedCheck], list[_Item]] = {}
        for item in batch:
            check = item.check
            if item.answer is not None or check is None:
                continue
            if isinstance(check, GroupedCheck):
                grouped.setdefault(type(check), []).append(item)
                continue
            try:
                await check(session)
            except DomainError as refused:
                item.answer = refused
        for kind, items in grouped.items():
            checks = [i.check for i in items if isinstance(i.check, GroupedCheck)]
            for item, refusal in zip(items, await kind.run_all(session, checks), strict=True):
                item.answer = refusal
        todo = [i for i in batch if i.answer is None]
        outcomes = await execute_many(
            [Order(i.command, i.ctx, i.claim.key if i.claim else None) for i in todo],
            self.ledger.context(session, EventContext.new("ledger")),  # each order has its own
        )
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


def _distinct_keys(batch: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """The batch with each key once, and the items whose key an earlier item holds."""
    seen: set[tuple[str, str]] = set()
    now, later = [], []
    for item in batch:
        key = (item.claim.scope, item.claim.key) if item.claim else None
        if key is not None and key in seen:
            later.append(item)
        else:
            if key is not None:
                seen.add(key)
            now.append(item)
    return now, later


__all__ = ["Check", "GroupCommitter", "GroupedCheck", "Respond"]
