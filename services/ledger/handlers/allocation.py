"""The yearly allocation run: every open or suspended wallet gets its statutory grant for
year Y exactly once, in batches, resumable after a crash.

A run exists only once a second person approved its proposal (``POST
/v1/ledger/allocations``, then ``approve`` by finance), and it carries the approved policy
it runs with: no default amounts are ever granted. The ledger's job loop
(:func:`allocation_worker`) runs every ``running`` allocation, woken when an approval
commits, and again after a restart.

Each batch is one transaction: the wallets are locked, each decides its grant (the domain
refuses a second grant for a year, and a unique index on the statutory lot per account and
year backs it, every invariant checked on the state after), the events are appended a chunk
of wallets a statement (events, projections and outbox rows together; the outbox rows are
bulk, published after the ledger's other events, a learner's reservation; the next chunk's rows
are built while the server writes the last; the next batch's wallet states are read and
folded meanwhile, on a connection of their own, into the cache that the next batch checks
against the heads it locks), and the run's cursor advances with them. A
crash loses at most the batch in flight, which the next start (or resume) does again. Any
error while granting rolls the batch back and ends the run ``failed`` with the reason
(``failure_code``, ``error``): never ``running`` forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import EntitlementPolicy, WalletState
from services.ledger.domain.statutory import StatutoryTerms, statutory_grant
from services.ledger.handlers import Context, Ledger, StateCache
from services.ledger.handlers.bulk import Columns, new_ids
from services.ledger.store import events as event_store
from services.ledger.store import runs
from services.ledger.store.events import Head
from shared import heap
from shared.db import UnitOfWork
from shared.outbox import EventContext

log = logging.getLogger(__name__)
YIELD_EVERY = 32
"""While a statement is in flight, the allocation yields to the event loop every this many
wallets (the loop sends what the socket did not take at once)."""
LOT_NAMESPACE = uuid.UUID("6f1f3c52-6a0e-4d43-9a36-2b8d1f0c7e11")


def statutory_lot_id(account_id: uuid.UUID, year: int) -> uuid.UUID:
    """The same account and year always name the same lot: a retry cannot grant twice.
    ``uuid.uuid5(LOT_NAMESPACE, f"{account_id}:{year}")``, without its checks of the
    bytes it is given (a unit test holds the two equal)."""
    digest = hashlib.sha1(_LOT_PREFIX + f"{account_id}:{year}".encode()).digest()
    value = int.from_bytes(digest[:16]) & _UUID_CLEAR | _UUID_V5
    lot_id = object.__new__(uuid.UUID)
    object.__setattr__(lot_id, "int", value)
    object.__setattr__(lot_id, "is_safe", uuid.SafeUUID.unknown)
    return lot_id


_LOT_PREFIX = LOT_NAMESPACE.bytes
_UUID_V5 = (0x5000 << 64) | (0x8000 << 48)
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


async def approved_policy_for(session: AsyncSession, year: int) -> EntitlementPolicy | None:
    """The approved policy of ``year``, or None (never the defaults)."""
    stored = await runs.approved_policy(session, year)
    if stored is None:
        return None
    return EntitlementPolicy.model_validate({**stored["policy"], "year": year})


class AllocationFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _policy_of(run: dict[str, Any]) -> EntitlementPolicy:
    if not run["policy"]:
        raise AllocationFailed("no_approved_policy", "the run carries no approved policy")
    try:
        policy = EntitlementPolicy.model_validate(run["policy"])
    except ValidationError as exc:
        raise AllocationFailed("invalid_policy", f"the run's policy is invalid: {exc}") from exc
    if policy.year != run["year"]:
        raise AllocationFailed("invalid_policy", "the run's policy is for another year")
    return policy


async def run_allocation(
    uow: UnitOfWork,
    ledger: Ledger,
    allocation_id: uuid.UUID,
    *,
    batch_size: int = 4000,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
    stop_after_batches: int | None = None,
) -> None:
    """Run (or resume) a running allocation to its end; a failure ends it ``failed``.
    Each transaction takes ``batch_size`` wallets, written ``chunk`` a statement."""
    try:
        await _run(uow, ledger, allocation_id, batch_size, chunk, progress, stop_after_batches)
    except AllocationFailed as exc:
        await _fail(uow, allocation_id, exc.code, exc.reason)
    except Exception as exc:
        log.exception("allocation %s failed", allocation_id)
        await _fail(uow, allocation_id, "grant_failed", f"{type(exc).__name__}: {exc}")
    finally:
        heap.thaw()  # what each batch set aside (heap.paused) is collected again


async def _fail(uow: UnitOfWork, allocation_id: uuid.UUID, code: str, reason: str) -> None:
    async with uow() as session:
        if await runs.fail_allocation(session, allocation_id, code, reason):
            log.warning("allocation %s failed: %s (%s)", allocation_id, code, reason)


async def _run(
    uow: UnitOfWork,
    ledger: Ledger,
    allocation_id: uuid.UUID,
    batch_size: int,
    chunk: int,
    progress: Callable[[int], None] | None,
    stop_after_batches: int | None,
) -> None:
    batches = 0
    ahead: asyncio.Task[None] | None = None
    try:
        while True:
            async with uow() as session:
                # one runner per allocation, even with several replicas resuming it
                if not await runs.try_lock_run(session, allocation_id):
                    return
                run = await runs.get_allocation(session, allocation_id, lock=True)
                if run is None or run["status"] != "running":
                    return
                policy = _policy_of(run)
                ctx = ledger.context(
                    session, EventContext(correlation_id=allocation_id, actor=run["requested_by"])
                )
                with heap.paused():
                    heads = await event_store.lock_heads_batch(session, run["cursor"], batch_size)
                    if ahead is not None:
                        await _settled(ahead)
                    states = await _states(heads, ctx)
                    finished = len(heads) < batch_size
                    if not finished:
                        # the next batch's states, read while this one's rows are written
                        ahead = asyncio.create_task(
                            _read_ahead(uow, ctx.cache, heads[-1][0], batch_size)
                        )
                    granted, amount = await _grant(heads, states, policy, allocation_id, ctx, chunk)
                await runs.advance_allocation(
                    session,
                    allocation_id,
                    cursor=heads[-1][0] if heads else None,
                    processed=len(heads),
                    granted=granted,
                    amount=amount,
                    finished=finished,
                )
            if progress is not None:
                progress(len(heads))
            batches += 1
            if finished or (stop_after_batches is not None and batches >= stop_after_batches):
                return
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()
            await _settled(ahead)


async def _settled(task: asyncio.Task[None]) -> None:
    """Wait for a read-ahead, whatever became of it: it only ever fills the cache."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    if not task.cancelled() and task.exception() is not None:
        log.warning("reading the next batch ahead failed: %s", task.exception())


async def _read_ahead(uow: UnitOfWork, cache: StateCache, after: uuid.UUID, limit: int) -> None:
    """Put into ``cache`` the states of the ``limit`` wallets the batch after ``after`` will
    take, read without locks in a transaction of its own (the batch's own connection is busy
    writing). A wallet that changes before the batch locks it has another head there, and
    is read again under its lock: the cache is keyed by the head."""
    async with uow() as session:
        heads = await event_store.lock_heads_batch(session, after, limit, lock=False)
        # the batch's statements go out while these are folded
        await cache.states(session, dict(heads), strict=False, pause_every=YIELD_EVERY)


async def _grant(
    heads: list[tuple[uuid.UUID, Head]],
    states: dict[uuid.UUID, WalletState],
    policy: EntitlementPolicy,
    allocation_id: uuid.UUID,
    ctx: Context,
    chunk: int,
) -> tuple[int, int]:
    """Decide and append each wallet's grant, ``chunk`` wallets a statement; the grant and
    credit totals. Each wallet's grant is decided and folded in one step
    (``statutory_grant``: the rules and invariants of ``allocate_folded``) and its rows
    written straight from it. The rows of the next chunk are built while the server writes
    the last (the statement is sent, then the loop yields every few wallets so that it
    goes out)."""
    granted = amount = 0
    terms = StatutoryTerms(policy)
    year, now = policy.year, ctx.now
    writing: asyncio.Task[int] | None = None
    try:
        for start in range(0, len(heads), chunk):
            columns = Columns(ctx, bulk=True)
            part = heads[start : start + chunk]
            ids = iter(new_ids(len(part)))
            for i, (account_id, head) in enumerate(part, 1):
                lot_id = statutory_lot_id(account_id, year)
                grant = statutory_grant(
                    states[account_id], terms, lot_id=lot_id, now=now, allocation_id=allocation_id
                )
                if grant is not None:
                    granted += 1
                    amount += grant[0]
                    columns.add_grant(
                        head, lot_id, grant[0], grant[1], terms, allocation_id, next(ids)
                    )
                if writing is not None and i % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            if writing is not None:
                await writing
            writing = asyncio.create_task(columns.write())
        if writing is not None:
            await writing
    finally:
        # a decision that failed while a statement was in flight: let it end before the
        # transaction rolls back on the same connection
        if writing is not None and not writing.done():
            with contextlib.suppress(Exception):
                await writing
    return granted, amount


async def _states(
    heads: list[tuple[uuid.UUID, Head]], ctx: Context
) -> dict[uuid.UUID, WalletState]:
    return await ctx.cache.states(ctx.session, dict(heads))


async def open_run(
    session: AsyncSession,
    year: int,
    requested_by: str,
    policy: EntitlementPolicy,
    *,
    approval_id: uuid.UUID | None = None,
    approved_by: str | None = None,
    agency_id: str | None = None,
) -> tuple[uuid.UUID, bool]:
    """A new run for ``year`` with ``policy`` in the caller's transaction, or the one
    already running (created=False). The caller has checked the run was approved."""
    if policy.year != year:
        raise ValueError("the policy is for another year")
    await runs.lock_year(session, year)
    running = await runs.running_allocation(session, year)
    if running is not None:
        return running["allocation_id"], False
    allocation_id = uuid.uuid4()
    total = await runs.count_allocatable(session)
    await runs.create_allocation(
        session,
        allocation_id,
        year,
        requested_by,
        total,
        policy=policy.model_dump(mode="json"),
        approval_id=approval_id,
        approved_by=approved_by,
        agency_id=agency_id,
    )
    return allocation_id, True


async def start_allocation(
    uow: UnitOfWork,
    year: int,
    requested_by: str,
    *,
    policy: EntitlementPolicy | None = None,
) -> tuple[uuid.UUID, bool]:
    """:func:`open_run` in a transaction of its own, for tests and benchmarks that drive
    the run directly, with ``policy`` or else the approved policy of ``year`` (LookupError
    when there is none: never the defaults). Services and the CLI create runs only through
    an approved proposal."""
    async with uow() as session:
        if policy is None:
            policy = await approved_policy_for(session, year)
            if policy is None:
                raise LookupError(f"no approved entitlement policy for {year}")
        return await open_run(session, year, requested_by, policy)


class Waker:
    """Wakes the allocation worker once the transaction that approved a run has committed."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def wake_after_commit(self, session: AsyncSession) -> None:
        # the worker must see the committed run; an approval that rolls back wakes no one
        event.listen(session.sync_session, "after_commit", lambda _s: self.event.set(), once=True)

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.event.wait()
        self.event.clear()


async def run_pending(uow: UnitOfWork, ledger: Ledger) -> int:
    """Run every allocation that is ``running`` (approved, or interrupted by a crash)."""
    async with uow() as session:
        pending = await runs.running_allocations(session)
    for allocation_id in pending:
        log.info("running allocation %s", allocation_id)
        await run_allocation(uow, ledger, allocation_id)
    return len(pending)


async def allocation_worker(
    uow: UnitOfWork,
    ledger: Ledger,
    waker: Waker,
    *,
    poll_seconds: float = 30.0,
) -> None:
    """The job loop: runs approved allocations when woken (and every ``poll_seconds``, to
    resume runs a crash or another replica left), until cancelled."""
    while True:
        waker.event.clear()
        try:
            await run_pending(uow, ledger)
        except Exception:  # the database may be away; try again on the next tick
            log.exception("allocation worker")
        await waker.wait(poll_seconds)
