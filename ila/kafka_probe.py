"""Waiting until a Kafka broker can serve clients.

A broker's port opens well before it can answer: :func:`wait_ready` probes until an
aiokafka admin client bootstraps and sees a broker and an elected controller, so the first
producer or admin request after it does not fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.bus.security import PLAINTEXT, KafkaSecurity


async def _probe(bootstrap: str, seconds: float, security: KafkaSecurity = PLAINTEXT) -> bool:
    """One attempt: can a client bootstrap and see a broker and a controller?"""
    host, _, port = bootstrap.rpartition(":")
    # A plain TCP connect first: aiokafka logs an ERROR for every refused bootstrap.
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), seconds)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(seconds * 1000)),
        **security.client_options(),
    )
    try:
        await asyncio.wait_for(admin.start(), seconds)
        cluster: dict[str, Any] = await asyncio.wait_for(admin.describe_cluster(), seconds)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    # KRaft reports a live broker as "controller"; -1 means metadata is not published yet,
    # and admin requests routed to the controller would fail.
    return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1


async def wait_until_ready(
    bootstrap: str,
    seconds: float,
    alive: Callable[[], bool],
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if not alive():
            raise RuntimeError(f"the Kafka broker at {bootstrap} exited while starting")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the Kafka broker at {bootstrap} was not ready in {seconds:.0f} s")
        if await _probe(bootstrap, min(5.0, max(remaining, 0.5)), security):
            return
        await asyncio.sleep(min(0.25, max(deadline - time.monotonic(), 0)))


# `timeout` rather than asyncio.timeout(): the same knob as start_broker's, and the wait is
# a polling loop that needs to know its deadline anyway.
async def wait_ready(bootstrap: str, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until an aiokafka client can bootstrap from ``bootstrap``; TimeoutError if not."""
    await wait_until_ready(bootstrap, timeout, lambda: True)


def run_blocking(make: Callable[[], Any]) -> None:
    # start_broker is sync but may be called from a thread that already runs an event loop
    # (an async test fixture); asyncio.run refuses that, so the wait moves to a thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="kafka-wait-ready")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
