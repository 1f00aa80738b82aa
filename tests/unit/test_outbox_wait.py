"""The relay's idle wait must let a shutdown cancel it even when a wake-up races with it
(asyncio.wait_for on Python 3.11 can swallow such a cancellation)."""

from __future__ import annotations

import asyncio

from shared.outbox import Outbox


async def test_a_cancellation_racing_a_wake_up_stops_the_waiting_loop() -> None:
    outbox = Outbox("accounts")

    async def relay_loop() -> None:
        while True:
            await outbox.wait(0.2)

    task = asyncio.create_task(relay_loop())
    await asyncio.sleep(0.05)
    outbox.wake()  # a commit wakes the relay ...
    task.cancel()  # ... just as the application shuts down
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
