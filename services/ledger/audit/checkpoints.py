"""Signed stream-head checkpoints.

Every ``every_events`` events, or every ``every_seconds`` when fewer came, the ledger records
its store's head: a settled position (:func:`horizon`: nothing at or below it can still
commit), the number of events at or below it, and the position and hash of the last one,
signed with HMAC-SHA256 under ``ILA_LEDGER_CHECKPOINT_KEY``. The key is not in the database,
so whoever can delete events (and rewrite the projections to match) cannot forge a checkpoint
that agrees: verify finds a store cut short, or a checkpoint that is not the ledger's, without
asking Kafka. The signed text is

    ila-ledger-checkpoint/v1|<position>|<head_position>|<head_hash>|<event_count>|<at RFC 3339>
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.store import checkpoints as store
from services.ledger.store.audit import horizon
from services.ledger.store.chain import rfc3339
from services.ledger.store.checkpoints import Checkpoint

log = logging.getLogger(__name__)


def key_id(key: bytes) -> str:
    """Names the key (not secret): a checkpoint signed under another key is told apart."""
    return hashlib.sha256(b"ila-ledger-checkpoint-key|" + key).hexdigest()[:16]


def signed_text(cp: Checkpoint) -> bytes:
    return (
        f"ila-ledger-checkpoint/v1|{cp.position}|{cp.head_position}|{cp.head_hash}|"
        f"{cp.event_count}|{rfc3339(cp.at)}"
    ).encode()


def sign(key: bytes, cp: Checkpoint) -> str:
    return hmac.new(key, signed_text(cp), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, cp: Checkpoint) -> bool:
    return hmac.compare_digest(sign(key, cp), cp.signature)


async def take(session: AsyncSession, key: bytes, now: datetime | None = None) -> Checkpoint | None:
    """Record a checkpoint of the store's settled head, in the caller's transaction; None
    when nothing was appended since the last one."""
    last = await store.latest(session)
    upto = await horizon(session)
    since = last.position if last is not None else 0
    if upto <= since:
        return None
    head = await store.head_at(session, upto)
    if head is None or (last is not None and head[0] == last.head_position):
        return None  # positions drawn since, but no event committed with them
    count = (last.event_count if last is not None else 0) + await store.count_between(
        session, since, upto
    )
    unsigned = Checkpoint(
        position=upto,
        head_position=head[0],
        head_hash=head[1],
        event_count=count,
        key_id=key_id(key),
        signature="",
        at=now or datetime.now(UTC),
    )
    cp = Checkpoint(**{**unsigned.__dict__, "signature": sign(key, unsigned)})
    await store.insert(session, cp)
    return cp


async def pending_events(session: AsyncSession) -> int:
    last = await store.latest(session)
    upto = await horizon(session)
    return await store.count_between(session, last.position if last else 0, upto)


async def checkpoint_forever(
    sessions: async_sessionmaker[AsyncSession],
    key: bytes,
    *,
    every_events: int,
    every_seconds: float,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """The ledger's background task: a checkpoint once ``every_events`` events came, or
    ``every_seconds`` passed with at least one."""
    last_at = clock()
    while True:
        try:
            async with sessions() as session, session.begin():
                due = clock() - last_at >= every_seconds
                if due or await pending_events(session) >= every_events:
                    cp = await take(session, key)
                    last_at = clock()
                    if cp is not None:
                        log.info(
                            "ledger checkpoint at position %s (%s events)",
                            cp.position,
                            cp.event_count,
                        )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ledger checkpoint failed; retrying")
        await asyncio.sleep(min(poll, every_seconds))


def check(
    key: bytes | None,
    checkpoints: list[Checkpoint],
    positions: list[int],
    hashes: dict[int, str],
) -> list[dict[str, Any]]:
    """What is wrong with the store against its checkpoints: ``positions`` are every event's
    position (sorted), ``hashes`` the hash at each checkpoint's head position."""
    problems: list[dict[str, Any]] = []

    def problem(cp: Checkpoint, text: str, **extra: Any) -> None:
        problems.append(
            {
                "stream": None,
                "position": cp.position,
                "checkpoint": cp.checkpoint_id,
                "problem": text,
                **extra,
            }
        )

    for cp in checkpoints:
        if key is not None and not signature_ok(key, cp):
            problem(cp, "checkpoint signature does not verify (forged or signed with another key)")
            continue
        held = bisect_right(positions, cp.position)
        if held != cp.event_count:
            problem(
                cp,
                f"the store holds {held} events up to position {cp.position}, "
                f"the signed checkpoint counted {cp.event_count}",
                missing=cp.event_count - held,
            )
        recorded = hashes.get(cp.head_position)
        if recorded is None:
            problem(cp, f"the checkpoint's head event at position {cp.head_position} is missing")
        elif recorded != cp.head_hash:
            problem(cp, f"the event at position {cp.head_position} is not the checkpoint's head")
    return problems
