"""Group commit for a consumer: the batches its partitions hand over while its transactions
are busy are applied together, in one transaction.

Each partition of a topic delivers its fetched batch and waits until it is applied before
its offsets are committed. Applied one transaction per partition, six partitions with a
few events each pay six times the fixed cost of a transaction (begin, inbox, locks,
commit) for what one transaction could hold. :class:`Joiner` keeps at most ``concurrency``
transactions in flight; a batch that arrives while they are all busy waits, and the next
free slot takes every batch waiting then (up to ``limit`` messages), in arrival order.

Nothing changes for the guarantees: a partition's messages stay in order and a key always
comes from the same partition, so each key's events are applied in order; every caller
returns only once its own messages are committed. A joined transaction that fails as a
whole (not a handler's error, which the consumer dead-letters alone, but a lost connection
or a failed dead-letter publish) is run again one batch at a time, so that it fails only
the caller whose batch fails; that caller's messages are delivered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from shared.bus import Message

Apply = Callable[[Sequence[Message]], Awaitable[None]]
Waiting = tuple[Sequence[Message], "asyncio.Future[None]"]


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # its caller went away; the messages are applied all the same
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Joiner:
    def __init__(self, apply: Apply, *, concurrency: int = 2, limit: int = 2000) -> None:
        self.apply = apply
        self.limit = limit
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: list[Waiting] = []
        self.transactions = 0  # applied (joined or alone), for tests and the bench
        self.split = 0  # joined transactions that failed and were run one batch at a time

    async def submit(self, messages: Sequence[Message]) -> None:
        """Apply ``messages``, with whatever other batches wait at the same time."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((messages, future))
        while not future.done():
            if not self._is_waiting(future):  # another caller's transaction holds it
                await future
                return
            async with self._slots:
                if self._is_waiting(future):
                    await self._run(self._take())
        future.result()

    def _is_waiting(self, future: asyncio.Future[None]) -> bool:
        return any(f is future for _, f in self._waiting)

    def _take(self) -> list[Waiting]:
        taken: list[Waiting] = []
        size = 0
        while self._waiting and (not taken or size + len(self._waiting[0][0]) <= self.limit):
            item = self._waiting.pop(0)
            taken.append(item)
            size += len(item[0])
        return taken

    async def _run(self, taken: list[Waiting]) -> None:
        try:
            self.transactions += 1
            await self.apply([m for messages, _ in taken for m in messages])
        except asyncio.CancelledError:
            for _, future in taken:
                _settle(future, RuntimeError("the transaction this batch joined was cancelled"))
                if not future.cancelled():
                    # read here: the cancelled caller's own batch has no other reader, and
                    # asyncio would log its failure as an error; a waiting caller still gets it
                    future.exception()
            raise
        except Exception as exc:
            if len(taken) == 1:
                _settle(taken[0][1], exc)
                return
            self.split += 1
            for messages, future in taken:
                try:
                    self.transactions += 1
                    await self.apply(messages)
                except Exception as alone:
                    _settle(future, alone)
                else:
                    _settle(future, None)
            return
        for _, future in taken:
            _settle(future, None)
