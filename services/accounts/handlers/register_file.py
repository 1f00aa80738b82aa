"""A register feed file (JSON Lines, docs/register-feed.md) applied a chunk at a time.

A record's position is its line number; blank lines count as lines and hold no record. The
run's checkpoint is the line number of the last line applied, so a run resumed after a crash
reads on from the next line; the lines before it are skipped without being parsed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from services.accounts.handlers.accounts import Accounts
from services.accounts.handlers.register import (
    Chunk,
    FeedRules,
    Raw,
    Unreadable,
    apply_chunk,
    finish,
)
from services.accounts.store.register import FeedRun
from shared.db import UnitOfWork
from shared.outbox import EventContext

MAX_LINE = 64 * 1024
Progress = Callable[[int], None]
"""Told the line number reached after each chunk committed."""


def fingerprint(path: Path) -> str:
    """The SHA-256 of the file: which runs applied this very file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def parse_line(line: bytes, first: bool) -> Raw | None:
    """The record of a line (None for a blank line), or why it cannot be read."""
    if len(line) > MAX_LINE:
        return Unreadable(f"line longer than {MAX_LINE} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Unreadable("not UTF-8 text")
    if first:
        text = text.removeprefix("\ufeff")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        return Unreadable(f"not JSON: {exc}")


def lines(path: Path, after: int = 0) -> Iterator[tuple[int, Raw | None]]:
    """(line number, record or None when blank) of each line after line ``after``."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if number > after:
                yield number, parse_line(line, number == 1)


async def run_file(
    accounts: Accounts,
    uow: UnitOfWork,
    rules: FeedRules,
    path: Path,
    run: FeedRun,
    events: EventContext,
    *,
    chunk_size: int = 1000,
    progress: Progress | None = None,
) -> FeedRun:
    """Apply the lines of ``path`` after the run's checkpoint, ``chunk_size`` records per
    transaction, then mark the run finished; the run as it ends."""
    after = run.checkpoint
    chunk: list[tuple[int, Raw]] = []
    last = after

    async def flush(upto: int) -> None:
        nonlocal after, chunk
        await apply_chunk(accounts, uow, rules, Chunk(run.feed_id, chunk, after, upto), events)
        after, chunk = upto, []
        if progress is not None:
            progress(upto)

    for number, raw in lines(path, after):
        last = number
        if raw is not None:
            chunk.append((number, raw))
        if len(chunk) >= chunk_size:
            await flush(number)
    if last > after:
        await flush(last)
    return await finish(uow, accounts, run.feed_id)
