"""The in-process bus hands a batch to every subscribed group side by side and returns only
once each is done; a group that fails is raised after the others finished (the relay then
leaves the rows unsent, and the inboxes make the second delivery harmless). The groups of
one delivery read each message's envelope, and validate its payload, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.events import Envelope, Event
from shared.events.accounts import AccountSuspended
from shared.inbox_batch import envelope_of, payload_of

A, B = Message("ila.a", "k", b"1"), Message("ila.b", "k", b"2")


async def test_groups_apply_side_by_side_and_each_gets_its_topics() -> None:
    bus = InProcessBus()
    seen: dict[str, list[Message]] = {}
    both_started = asyncio.Barrier(2)

    def group(name: str):  # type: ignore[no-untyped-def]
        async def handle(batch: Sequence[Message]) -> None:
            seen[name] = list(batch)
            # one after the other, the first group would wait here for ever
            await asyncio.wait_for(both_started.wait(), 2)

        return handle

    bus.subscribe("one", ["ila.a"], group("one"))
    bus.subscribe("two", ["ila.a", "ila.b"], group("two"))
    bus.subscribe("three", ["ila.c"], group("three"))
    await bus.publish([A, B])
    assert seen == {"one": [A], "two": [A, B]}


async def test_a_failing_group_is_raised_once_the_others_are_done() -> None:
    bus = InProcessBus()
    finished: list[str] = []

    async def fails(batch: Sequence[Message]) -> None:
        raise RuntimeError("refused")

    async def slow(batch: Sequence[Message]) -> None:
        await asyncio.sleep(0.05)
        finished.append("slow")

    bus.subscribe("fails", ["ila.a"], fails)
    bus.subscribe("slow", ["ila.a"], slow)
    with pytest.raises(RuntimeError, match="refused"):
        await bus.publish([A])
    assert finished == ["slow"]


async def test_the_groups_of_one_delivery_read_each_envelope_once() -> None:
    envelope = Envelope(
        source="/ila/test",
        type="ila.test.Probe.v1",
        subject="k",
        correlationid=uuid.uuid4(),
        data={"n": 1},
    )
    message = Message("ila.a", "k", envelope.to_bytes())
    unreadable = Message("ila.a", "k", b"{not an envelope")
    bus = InProcessBus()
    read: dict[str, list[Envelope | None]] = {}

    def group(name: str):  # type: ignore[no-untyped-def]
        async def handle(batch: Sequence[Message]) -> None:
            read[name] = [envelope_of(m) for m in batch]
            await asyncio.sleep(0)

        return handle

    bus.subscribe("one", ["ila.a"], group("one"))
    bus.subscribe("two", ["ila.a"], group("two"))
    await bus.publish([message, unreadable])
    one, two = read["one"], read["two"]
    assert one[0] is two[0] and one[0] == envelope  # parsed once, for both
    assert one[1] is None and two[1] is None
    # outside a delivery, each read parses again
    assert envelope_of(message) is not envelope_of(message)


async def test_the_groups_of_one_delivery_validate_each_payload_once() -> None:
    event = AccountSuspended(account_id=uuid.uuid4(), reason_code="other")
    message = Message("ila.a", "k", Envelope.wrap(event, source="/ila/test").to_bytes())
    bus = InProcessBus()
    payloads: list[Event] = []

    async def handle(batch: Sequence[Message]) -> None:
        envelope = envelope_of(batch[0])
        assert envelope is not None
        payloads.append(payload_of(envelope))
        await asyncio.sleep(0)

    bus.subscribe("one", ["ila.a"], handle)
    bus.subscribe("two", ["ila.a"], handle)
    await bus.publish([message])
    assert payloads[0] is payloads[1] and payloads[0] == event
    envelope = envelope_of(message)
    assert envelope is not None
    assert payload_of(envelope) is not payload_of(envelope)  # outside a delivery
