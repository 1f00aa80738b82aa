"""Verification for auditors: every hash chain recomputed, every wallet rebuilt from its
events and compared with the projections, every signed checkpoint checked against the store
(a store cut short, or a forged checkpoint, is found without Kafka). Each mismatch names its
stream (or checkpoint) and position.

The events are read on the driver in large pages, stream after stream, and cut into
batches of whole streams; the batches are checked (:mod:`.streams`) by worker processes
while the next ones are read, and their findings merged in stream order, so the report is
the one a single pass would give.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.audit import checkpoints as signed
from services.ledger.audit import pool as worker_pool
from services.ledger.audit.budgets import FunderBooks
from services.ledger.audit.streams import Checked, Row, Stream, check_streams, wallet_view
from services.ledger.store import audit as audit_reads
from services.ledger.store import checkpoints as checkpoint_reads
from shared.db import driver

PAGE = 5000
"""Events read per round trip, and about as many checked per batch."""


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    checkpoints: int = 0
    funders: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "funders": self.funders,
            "mismatch_count": len(self.mismatches),
            "mismatches": self.mismatches[:1000],
            "seconds": round(self.seconds, 3),
        }


async def verify(
    session: AsyncSession, checkpoint_key: bytes | None = None, *, workers: int | None = None
) -> VerifyReport:
    """One pass over the events in stream order, each stream then compared with its
    projections, then the signed checkpoints (their signatures checked with
    ``checkpoint_key``, by default the settings' ``ILA_LEDGER_CHECKPOINT_KEY``).

    ``workers``: processes checking batches of streams (by default one per core, none
    for a store too small to gain from them); 0 checks every batch in this process.

    Every read is made in one REPEATABLE READ, read-only transaction when ``session`` has
    not begun one yet: the projections, the events and the checkpoints are then one
    snapshot, and appends committed while verify runs cannot show as mismatches."""
    started = time.perf_counter()
    report = VerifyReport()
    if not session.in_transaction():
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    if checkpoint_key is None:
        from shared.settings import get_settings

        checkpoint_key = get_settings().ledger_checkpoint_key.encode()
    cps = await checkpoint_reads.every(session)
    heads = frozenset(cp.head_position for cp in cps)
    conn = await driver(session)
    wallets, lots, reservations, budgets = await audit_reads.verify_projections(conn)
    if workers is None:
        workers = worker_pool.default_workers(len(wallets) + len(budgets))
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(worker_pool.executor(workers)) if workers else None
        checks = Checks(heads, pool)

        def stream(stream_id: str, events: list[Row]) -> Stream:
            return (
                stream_id,
                events,
                wallets.pop(stream_id, None),
                lots.pop(stream_id, []),
                reservations.pop(stream_id, []),
                budgets.pop(stream_id, None),
            )

        current: list[Row] = []  # the stream the last page ended in, so far
        async for page in audit_reads.verify_events(conn, PAGE):
            batch: list[Stream] = []
            start = 0
            stream_id = current[0][2] if current else page[0][2]
            for i, row in enumerate(page):
                if row[2] != stream_id:
                    current.extend(page[start:i])
                    batch.append(stream(stream_id, current))
                    current, start, stream_id = [], i, row[2]
            current.extend(page[start:])
            await checks.submit(batch)
        if current:
            await checks.submit([stream(current[0][2], current)])
        checked = await checks.result()

    report.streams, report.events = checked.streams, checked.events
    report.mismatches += checked.mismatches
    report.mismatches += checked.books.mismatches()
    report.funders = checked.books.summary()
    for budget_id in budgets:  # those of a stream were taken by it
        report.mismatches.append(
            {"stream": budget_id, "position": None, "problem": "budget without any event"}
        )
    positions = sorted(checked.positions)
    report.checkpoints = len(cps)
    report.mismatches += signed.check(checkpoint_key, cps, positions, checked.head_hashes)
    for account_id in wallets:
        report.mismatches.append(
            {
                "stream": account_id,
                "position": None,
                "problem": "wallet projection without any event",
            }
        )
    report.seconds = time.perf_counter() - started
    return report


class Checks:
    """Batches of streams checked in order: in worker processes once they are ready (a
    bounded number in flight, so reading runs ahead of checking by a few batches only),
    here until then. Once ready they stay so: no batch checked here follows one sent."""

    def __init__(self, heads: frozenset[int], workers: worker_pool.Workers | None) -> None:
        self.heads = heads
        self.workers = workers
        self.limit = 2 * workers.count if workers else 0
        self.flight: deque[Awaitable[Checked]] = deque()
        self.total = Checked()

    async def submit(self, batch: list[Stream]) -> None:
        if not batch:
            return
        if self.workers is None or not self.workers.ready:
            self._merge(check_streams(batch, self.heads))
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        pool = self.workers.pool
        self.flight.append(loop.run_in_executor(pool, check_streams, batch, self.heads))
        while len(self.flight) >= self.limit:
            self._merge(await self.flight.popleft())

    async def result(self) -> Checked:
        while self.flight:
            self._merge(await self.flight.popleft())
        return self.total

    def _merge(self, part: Checked) -> None:
        total = self.total
        total.streams += part.streams
        total.events += part.events
        total.mismatches += part.mismatches
        total.positions += part.positions
        total.head_hashes.update(part.head_hashes)
        total.books.merge(part.books)


__all__ = ["FunderBooks", "VerifyReport", "verify", "wallet_view"]
