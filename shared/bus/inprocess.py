"""The in-process transport for the all-in-one mode.

``publish`` runs every subscribed group's handler before it returns, so the relay marks
an outbox row sent only after every consumer committed its effect: a crash at any point
leaves the row unsent and it is delivered again (the inbox makes that harmless).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

from shared.bus.base import Bus, Message

log = logging.getLogger(__name__)


class InProcessBus(Bus):
    def __init__(self, *, dead_letter_capacity: int = 1000) -> None:
        super().__init__()
        # No one consumes dead-letter topics in-process; keep the latest for operators.
        self.dead_letters: deque[Message] = deque(maxlen=dead_letter_capacity)
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def ping(self) -> bool:
        return self._running

    async def publish(self, messages: Sequence[Message]) -> None:
        for _group, topics, handler in self.subscriptions:
            batch = [m for m in messages if m.topic in topics]
            if batch:
                await handler(batch)
        for m in messages:
            if m.topic.endswith(".dlt"):
                self.dead_letters.append(m)
