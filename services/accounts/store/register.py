"""The runs of the population register's feed: each run with its checkpoint and counts,
and the outcome of every record it applied (the report)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.domain.register import Outcome
from shared.db import fetch_one

FEED_COLUMNS = (
    "feed_id, source, fingerprint, feed_date, checkpoint, last_record_id, opened, existing, "
    "closed, skipped, rejected, started_at, finished_at"
)


@dataclass(frozen=True)
class FeedRun:
    """A run of a feed as stored: ``checkpoint`` is the position of the last record applied
    (in a file, its line number), committed with what those records did."""

    feed_id: uuid.UUID
    source: str
    fingerprint: str | None
    feed_date: date
    checkpoint: int
    last_record_id: str | None
    opened: int
    existing: int
    closed: int
    skipped: int
    rejected: int
    started_at: datetime
    finished_at: datetime | None

    def counts(self) -> dict[str, int]:
        return {
            "opened": self.opened,
            "existing": self.existing,
            "closed": self.closed,
            "skipped": self.skipped,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class RecordOutcome:
    """What one record of a feed did; ``position`` counts from 1 (in a file: the line)."""

    position: int
    record_id: str | None
    outcome: Outcome
    reason: str | None = None


async def create(
    session: AsyncSession,
    feed_id: uuid.UUID,
    source: str,
    fingerprint: str | None,
    feed_date: date,
    now: datetime,
) -> FeedRun | None:
    """A new run (None when ``feed_id`` is taken)."""
    return await fetch_one(
        session,
        FeedRun,
        "INSERT INTO accounts.register_feeds (feed_id, source, fingerprint, feed_date, "
        "started_at, updated_at) VALUES (:f, :s, :p, :d, :now, :now) "
        f"ON CONFLICT (feed_id) DO NOTHING RETURNING {FEED_COLUMNS}",
        {"f": feed_id, "s": source, "p": fingerprint, "d": feed_date, "now": now},
    )


async def get(session: AsyncSession, feed_id: uuid.UUID, *, lock: bool = False) -> FeedRun | None:
    sql = f"SELECT {FEED_COLUMNS} FROM accounts.register_feeds WHERE feed_id = :f"
    return await fetch_one(session, FeedRun, sql + (" FOR UPDATE" if lock else ""), {"f": feed_id})


async def unfinished(session: AsyncSession, fingerprint: str) -> FeedRun | None:
    """The latest run of the file with ``fingerprint`` that did not finish."""
    return await fetch_one(
        session,
        FeedRun,
        f"SELECT {FEED_COLUMNS} FROM accounts.register_feeds "
        "WHERE fingerprint = :p AND finished_at IS NULL ORDER BY started_at DESC LIMIT 1",
        {"p": fingerprint},
    )


async def record(
    session: AsyncSession,
    feed_id: uuid.UUID,
    outcomes: Sequence[RecordOutcome],
    checkpoint: int,
    last_record_id: str | None,
) -> None:
    """Store what records did and move the checkpoint past them (in the caller's
    transaction, with the accounts they opened or closed)."""
    if outcomes:
        await session.execute(
            text(
                "INSERT INTO accounts.register_feed_records (feed_id, position, record_id, "
                "outcome, reason) SELECT :f, p, r, o, w FROM unnest(CAST(:p AS integer[]), "
                "CAST(:r AS text[]), CAST(:o AS text[]), CAST(:w AS text[])) AS t(p, r, o, w)"
            ),
            {
                "f": feed_id,
                "p": [o.position for o in outcomes],
                "r": [o.record_id for o in outcomes],
                "o": [o.outcome for o in outcomes],
                "w": [o.reason for o in outcomes],
            },
        )
    counts = Counter(o.outcome for o in outcomes)
    await session.execute(
        text(
            "UPDATE accounts.register_feeds SET checkpoint = :c, "
            "last_record_id = coalesce(:last, last_record_id), opened = opened + :opened, "
            "existing = existing + :existing, closed = closed + :closed, "
            "skipped = skipped + :skipped, rejected = rejected + :rejected, updated_at = now() "
            "WHERE feed_id = :f"
        ),
        {
            "f": feed_id,
            "c": checkpoint,
            "last": last_record_id,
            "opened": counts["opened"],
            "existing": counts["existing"],
            "closed": counts["closed"],
            "skipped": counts["skipped"],
            "rejected": counts["rejected"],
        },
    )


async def finish(session: AsyncSession, feed_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE accounts.register_feeds SET finished_at = coalesce(finished_at, :now), "
            "updated_at = now() WHERE feed_id = :f"
        ),
        {"f": feed_id, "now": now},
    )


async def outcomes(
    session: AsyncSession, feed_id: uuid.UUID, after: int = 0, upto: int | None = None
) -> list[RecordOutcome]:
    """The outcomes of the records at positions in (``after``, ``upto``], in order."""
    rows = await session.execute(
        text(
            "SELECT position, record_id, outcome, reason FROM accounts.register_feed_records "
            "WHERE feed_id = :f AND position > :a AND (CAST(:u AS integer) IS NULL "
            "OR position <= CAST(:u AS integer)) ORDER BY position"
        ),
        {"f": feed_id, "a": after, "u": upto},
    )
    return [RecordOutcome(r.position, r.record_id, r.outcome, r.reason) for r in rows]


async def stream_outcomes(
    session: AsyncSession, feed_id: uuid.UUID, page: int = 10_000
) -> AsyncIterator[RecordOutcome]:
    """Every outcome of a run, in order, a page at a time (for its report)."""
    after = 0
    while True:
        rows = await session.execute(
            text(
                "SELECT position, record_id, outcome, reason FROM "
                "accounts.register_feed_records WHERE feed_id = :f AND position > :a "
                "ORDER BY position LIMIT :n"
            ),
            {"f": feed_id, "a": after, "n": page},
        )
        batch = [RecordOutcome(r.position, r.record_id, r.outcome, r.reason) for r in rows]
        for item in batch:
            yield item
        if len(batch) < page:
            return
        after = batch[-1].position
