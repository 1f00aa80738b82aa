"""The in-process transport for the all-in-one mode.

``publish`` runs every subscribed group's handler (the groups side by side) before it
returns, so the relay marks an outbox row sent only after every consumer committed its
effect: a crash at any point leaves the row unsent and it is delivered again (the inbox
makes that harmless). Nobody consumes dead-letter topics in-process: the consumer keeps its
dead letters in its service's ``dead_letters`` table (:mod:`shared.dead_letters`), as it
does over Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from shared.bus.base import Bus, Message

log = logging.getLogger(__name__)

READ: ContextVar[dict[int, tuple[object, Any]] | None] = ContextVar(
    "ila_inprocess_read", default=None
)
"""What the groups of one in-process delivery read from its messages (the same objects
reach every group), by the object read and holding it. Set only while
:meth:`InProcessBus.publish` runs (see :func:`read_once`)."""

T = TypeVar("T")


def read_once(source: object, read: Callable[[], T]) -> T:
    """``read()`` of ``source``, done once for all the groups of the delivery in progress:
    each message's envelope is parsed, and each envelope's payload validated, once, not once
    per group (:func:`shared.inbox_batch.envelope_of`, :func:`~shared.inbox_batch.payload_of`).
    Outside a delivery, ``read()``. What raises is not kept. The entry holds ``source``, so
    that its id cannot name another object while the entry exists."""
    known = READ.get()
    if known is None:
        return read()
    hit = known.get(id(source))
    if hit is not None and hit[0] is source:
        value: T = hit[1]
        return value
    value = read()
    known[id(source)] = (source, value)
    return value


class InProcessBus(Bus):
    def __init__(self) -> None:
        super().__init__()
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def ping(self) -> bool:
        return self._running

    async def publish(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to every subscribed group, the groups side by side (each its
        own transaction on its own connection, as separate processes would over Kafka);
        return once all are done, raising the first failure."""
        runs = []
        for _group, topics, handler in self.subscriptions:
            batch = [m for m in messages if m.topic in topics]
            if batch:
                runs.append(handler(batch))
        if len(runs) == 1:
            await runs[0]
            return
        token = READ.set({})
        try:
            outcomes = await asyncio.gather(*runs, return_exceptions=True)
        finally:
            READ.reset(token)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
