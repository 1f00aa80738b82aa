"""The report of a register feed run: one CSV line per record (its position, record id,
outcome and reason), written from the outcomes the run stored, so that a run resumed after
a crash reports every record once, the part before the crash included."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from typing import TextIO

from services.accounts.store.register import FeedRun, RecordOutcome

REPORT_COLUMNS = ("position", "record_id", "outcome", "reason")


def report_row(o: RecordOutcome) -> list[str]:
    return [str(o.position), o.record_id or "", o.outcome, o.reason or ""]


async def write_report(outcomes: AsyncIterator[RecordOutcome], out: TextIO) -> int:
    """Write the report's CSV to ``out``; how many records it lists."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    n = 0
    async for o in outcomes:
        writer.writerow(report_row(o))
        n += 1
    return n


def summary(run: FeedRun) -> str:
    """One line: how many records did what."""
    counts = run.counts()
    total = sum(counts.values())
    parts = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{total} records: {parts}"
