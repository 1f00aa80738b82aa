"""Support of the tests that look for a person's traces: a bus that keeps every message it
carried (what Kafka's topics would hold), a search for needles in any stored value, and a
check that every service's outbox relay has published everything."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from shared.bus import Message
from shared.bus.inprocess import InProcessBus


class RecordingBus(InProcessBus):
    """The in-process bus, keeping every message published: what Kafka's topics would hold."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Message] = []

    async def publish(self, messages: Sequence[Message]) -> None:
        self.log.extend(messages)
        await super().publish(messages)


def found(value: object, needles: Sequence[str]) -> list[str]:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return [n for n in needles if n.encode() in raw or n.lower().encode() in raw.lower()]
    text_ = str(value).lower()
    return [n for n in needles if n.lower() in text_]


async def relays_idle(app: FastAPI) -> bool:
    return all([await rt.relay.backlog() == 0 for rt in app.state.runtimes.values()])
