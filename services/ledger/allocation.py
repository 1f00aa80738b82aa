"""The yearly allocation run: every open or suspended wallet gets its statutory grant for
year Y exactly once, in batches, resumable after a crash.

Each batch is one transaction: the wallets are locked, each decides its grant (the domain
refuses a second grant for a year, and a unique index on the statutory lot per account and
year backs it), the events of the whole batch are appended in one statement per table, and
the run's cursor advances with them. A crash loses at most the batch in flight, which the
next start (or resume) does again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger import store
from services.ledger.domain import EntitlementPolicy, WalletState, allocate_entitlement, replay
from services.ledger.handlers import Ledger
from shared.db import transaction
from shared.events.ledger import LedgerEvent
from shared.outbox import EventContext

log = logging.getLogger(__name__)
LOT_NAMESPACE = uuid.UUID("6f1f3c52-6a0e-4d43-9a36-2b8d1f0c7e11")


def statutory_lot_id(account_id: uuid.UUID, year: int) -> uuid.UUID:
    """The same account and year always name the same lot: a retry cannot grant twice."""
    return uuid.uuid5(LOT_NAMESPACE, f"{account_id}:{year}")


async def policy_for(session: AsyncSession, year: int) -> EntitlementPolicy:
    stored = await store.get_policy(session, year)
    return EntitlementPolicy.model_validate(stored) if stored else EntitlementPolicy(year=year)


async def run_allocation(
    sessions: async_sessionmaker[AsyncSession],
    ledger: Ledger,
    allocation_id: uuid.UUID,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    stop_after_batches: int | None = None,
) -> None:
    batches = 0
    while True:
        async with transaction(sessions) as session:
            # one runner per allocation, even with several replicas resuming it
            if not await session.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
                {"k": f"allocation:{allocation_id}"},
            ):
                return
            run = await store.get_allocation(session, allocation_id, lock=True)
            if run is None or run["status"] != "running":
                return
            year = run["year"]
            policy = await policy_for(session, year)
            heads = await store.lock_heads_batch(session, run["cursor"], batch_size)
            now = datetime.now(UTC)
            states = await _states(session, ledger, heads)
            ctx = EventContext(correlation_id=allocation_id, actor=run["requested_by"])
            batch: list[tuple[WalletState, store.Head | None, list[LedgerEvent]]] = []
            granted = amount = 0
            for account_id, head in heads:
                state = states[account_id]
                events = allocate_entitlement(
                    state,
                    policy,
                    lot_id=statutory_lot_id(account_id, year),
                    now=now,
                    allocation_id=allocation_id,
                )
                if events:
                    granted += 1
                    amount += sum(getattr(e, "amount", 0) for e in events)
                    batch.append((state, head, events))
            if batch:
                await ledger.append_many(session, batch, ctx, now=now)
            finished = len(heads) < batch_size
            await store.advance_allocation(
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


async def _states(
    session: AsyncSession, ledger: Ledger, heads: list[tuple[uuid.UUID, store.Head]]
) -> dict[uuid.UUID, WalletState]:
    states: dict[uuid.UUID, WalletState] = {}
    missing = []
    for account_id, head in heads:
        cached = ledger.cache.get(account_id, head)
        if cached is None:
            missing.append(account_id)
        else:
            states[account_id] = cached
    for account_id, rows in (await store.load_streams(session, missing)).items():
        states[account_id] = replay(r.payload() for r in rows)
    return states


async def start_allocation(
    sessions: async_sessionmaker[AsyncSession], year: int, requested_by: str
) -> tuple[uuid.UUID, bool]:
    """A new run for ``year``, or the one already running (created=False)."""
    async with transaction(sessions) as session:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"allocation-year:{year}"}
        )
        running = await store.running_allocation(session, year)
        if running is not None:
            return running["allocation_id"], False
        allocation_id = uuid.uuid4()
        total = await store.count_allocatable(session)
        await store.create_allocation(session, allocation_id, year, requested_by, total)
        return allocation_id, True
