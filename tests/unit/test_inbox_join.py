"""The consumer's group commit (shared.inbox_join): batches that wait are applied together,
each caller returns once its own messages are applied, and a joined transaction that fails
fails only the batch that makes it fail."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

import pytest

from shared.bus import Message
from shared.inbox_join import Joiner


def batch(partition: int, n: int) -> list[Message]:
    return [Message("t", f"p{partition}", f"{partition}-{i}".encode()) for i in range(n)]


class Store:
    """What a transaction applies, the transactions it took, and a gate to hold them."""

    def __init__(self) -> None:
        self.transactions: list[list[bytes]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.hold = asyncio.Event()  # what a transaction holding b"hold..." waits for

    async def apply(self, messages: Sequence[Message]) -> None:
        await self.gate.wait()
        values = [m.value for m in messages]
        if any(v.startswith(b"hold") for v in values):
            await self.hold.wait()
        if any(v.startswith(b"bad") for v in values):
            raise RuntimeError("cannot apply")
        self.transactions.append(values)


async def test_batches_that_wait_share_one_transaction_and_keep_their_order() -> None:
    store = Store()
    joiner = Joiner(store.apply, concurrency=1)
    store.gate.clear()
    first = asyncio.create_task(joiner.submit(batch(0, 2)))
    await asyncio.sleep(0)  # the first holds the only slot, waiting at the gate
    others = [asyncio.create_task(joiner.submit(batch(p, 3))) for p in range(1, 6)]
    await asyncio.sleep(0)
    assert not first.done() and not any(t.done() for t in others)
    store.gate.set()
    await asyncio.gather(first, *others)
    assert len(store.transactions) == 2
    assert store.transactions[0] == [m.value for m in batch(0, 2)]
    assert store.transactions[1] == [m.value for p in range(1, 6) for m in batch(p, 3)]
    assert joiner.transactions == 2 and joiner.split == 0


async def test_a_caller_returns_only_after_its_own_messages_are_applied() -> None:
    store = Store()
    joiner = Joiner(store.apply, concurrency=2)
    store.gate.clear()
    tasks = [asyncio.create_task(joiner.submit(batch(p, 1))) for p in range(4)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    assert store.transactions == []
    store.gate.set()
    await asyncio.gather(*tasks)
    applied = sorted(v for t in store.transactions for v in t)
    assert applied == sorted(m.value for p in range(4) for m in batch(p, 1))


async def test_a_failing_joined_transaction_fails_only_the_batch_that_fails() -> None:
    store = Store()
    joiner = Joiner(store.apply, concurrency=1)
    store.gate.clear()
    head = asyncio.create_task(joiner.submit(batch(0, 1)))
    await asyncio.sleep(0)
    good = [asyncio.create_task(joiner.submit(batch(p, 2))) for p in (1, 2)]
    bad = asyncio.create_task(joiner.submit([Message("t", "p3", b"bad")]))
    more = asyncio.create_task(joiner.submit(batch(4, 2)))
    store.gate.set()
    await asyncio.gather(head, *good, more)
    with pytest.raises(RuntimeError, match="cannot apply"):
        await bad
    assert joiner.split == 1
    applied = sorted(v for t in store.transactions for v in t)
    assert applied == sorted(m.value for p in (0, 1, 2, 4) for m in batch(p, 1 if p == 0 else 2))


async def test_a_joined_batch_never_grows_past_the_limit() -> None:
    store = Store()
    joiner = Joiner(store.apply, concurrency=1, limit=5)
    store.gate.clear()
    tasks = [asyncio.create_task(joiner.submit(batch(p, 2))) for p in range(6)]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(*tasks)
    assert max(len(t) for t in store.transactions) <= 5
    assert sum(len(t) for t in store.transactions) == 12


async def test_a_cancelled_transaction_fails_the_batches_that_joined_it() -> None:
    store = Store()
    joiner = Joiner(store.apply, concurrency=1)
    store.gate.clear()
    first = asyncio.create_task(joiner.submit(batch(0, 1)))
    await asyncio.sleep(0)
    leader = asyncio.create_task(joiner.submit([Message("t", "p1", b"hold")]))
    joined = asyncio.create_task(joiner.submit(batch(2, 1)))
    for _ in range(3):
        await asyncio.sleep(0)
    store.gate.set()  # the first commits; the next transaction takes the two waiting batches
    await first
    for _ in range(5):
        await asyncio.sleep(0)
    leader.cancel()  # stopped while its transaction, joined by the other batch, is open
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(RuntimeError, match="cancelled"):
        await joined  # not committed: its caller is told so, and the bus delivers it again
    assert store.transactions == [[b"0-0"]]


async def test_a_cancelled_transaction_leaves_no_unread_failure_behind() -> None:
    """The cancelled caller's own batch is failed too, and nobody reads that failure: asyncio
    would log it as an error ("Future exception was never retrieved") at every stop."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    try:
        store = Store()
        joiner = Joiner(store.apply, concurrency=1)
        leader = asyncio.create_task(joiner.submit([Message("t", "p1", b"hold")]))
        for _ in range(3):
            await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        del leader
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
