"""The wallet states a process caches: when another process appended since, only the events
after the cached head are read and folded on; a cached head that never committed, or a
stream that does not end at the head, is never taken for the wallet's state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.commands import Command, GrantCredits, OpenWallet
from services.ledger.domain import WalletState, replay
from services.ledger.domain.state import replace
from services.ledger.handlers import Ledger, StateCache
from services.ledger.handlers.wallets import execute
from services.ledger.store import events as event_store
from services.ledger.store.events import Head
from shared.db import make_engine, make_sessionmaker, migrate, transaction
from shared.outbox import EventContext, Outbox

pytestmark = pytest.mark.postgres

NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
A, B = uuid.UUID(int=101), uuid.UUID(int=102)
CTX = EventContext(correlation_id=uuid.UUID(int=1), actor="test")
Sessions = async_sessionmaker[AsyncSession]
MARK = frozenset({1999})  # a year no event of these streams grants


def grant(account: uuid.UUID, lot: int, amount: int) -> GrantCredits:
    return GrantCredits(
        account_id=account, lot_id=uuid.UUID(int=lot), amount=amount, funder_id="state"
    )


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    await migrate(engine, "ledger")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def run(sessions: Sessions, ledger: Ledger, *commands: Command) -> None:
    for command in commands:
        async with transaction(sessions) as s:
            await execute(command, ledger.context(s, CTX, now=NOW))


async def heads_and_streams(
    sessions: Sessions, accounts: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, Head], dict[uuid.UUID, WalletState]]:
    async with sessions() as s:
        heads = await event_store.lock_heads(s, accounts)
        whole = {a: replay(r.payload() for r in await event_store.load_stream(s, a)) for a in heads}
    return heads, whole


async def states(
    sessions: Sessions, cache: StateCache, heads: dict[uuid.UUID, Head], *, strict: bool = True
) -> dict[uuid.UUID, WalletState]:
    async with sessions() as s:
        return await cache.states(s, heads, strict=strict)


async def test_a_cached_earlier_head_is_folded_on_with_only_the_events_after_it(
    sessions: Sessions,
) -> None:
    one = Ledger(Outbox("ledger"), cache=StateCache())
    other = Ledger(Outbox("ledger"), cache=StateCache())
    await run(sessions, one, OpenWallet(account_id=A), grant(A, 1, 1_000))
    head2, _ = await heads_and_streams(sessions, [A])
    earlier = one.cache.get(A, head2[A])
    assert earlier is not None and earlier.version == 2
    # another process tops the wallet up twice: this one's cache is two events behind
    await run(sessions, other, grant(A, 2, 200), grant(A, 3, 300))
    heads, whole = await heads_and_streams(sessions, [A])
    assert heads[A].version == 4
    # mark the cached state: the mark shows it was folded on, not replayed from the start
    one.cache.put(A, head2[A], replace(earlier, years_granted=MARK))
    got = (await states(sessions, one.cache, heads))[A]
    assert got == replace(whole[A], years_granted=MARK)
    assert got.version == 4 and got.remaining == 1_500
    assert one.cache.get(A, heads[A]) is got
    # and a wallet this process never saw is replayed whole, in the same statement
    await run(sessions, other, OpenWallet(account_id=B), grant(B, 4, 70))
    one.cache.put(A, head2[A], replace(earlier, years_granted=MARK))
    heads, whole = await heads_and_streams(sessions, [A, B])
    got_both = await states(sessions, one.cache, heads)
    assert got_both == {A: replace(whole[A], years_granted=MARK), B: whole[B]}


async def test_a_cached_head_whose_transaction_rolled_back_is_not_folded_on(
    sessions: Sessions,
) -> None:
    one = Ledger(Outbox("ledger"), cache=StateCache())
    other = Ledger(Outbox("ledger"), cache=StateCache())
    await run(sessions, one, OpenWallet(account_id=A), grant(A, 1, 1_000))
    # this process decides a grant, caches its state, and the transaction rolls back
    with pytest.raises(RuntimeError, match="rolled back"):
        async with transaction(sessions) as s:
            await execute(grant(A, 2, 999), one.context(s, CTX, now=NOW))
            raise RuntimeError("rolled back")
    # another process appends two events of its own, so the head moved past that version
    await run(sessions, other, grant(A, 3, 5), grant(A, 4, 7))
    heads, whole = await heads_and_streams(sessions, [A])
    got = (await states(sessions, one.cache, heads))[A]
    assert got == whole[A]
    assert uuid.UUID(int=2) not in got.lots and got.remaining == 1_012
    # a cached state at the head's own version but another hash is no start either
    one.cache.put(A, Head(heads[A].version, "f" * 64), replace(got, years_granted=MARK))
    assert (await states(sessions, one.cache, heads))[A] == whole[A]


async def test_a_stream_that_does_not_end_at_the_head_is_refused_or_left_out(
    sessions: Sessions,
) -> None:
    one = Ledger(Outbox("ledger"), cache=StateCache())
    await run(sessions, one, OpenWallet(account_id=A), grant(A, 1, 1_000))
    await run(sessions, one, OpenWallet(account_id=B))
    heads, whole = await heads_and_streams(sessions, [A, B])
    beyond = {A: Head(heads[A].version + 1, heads[A].hash), B: heads[B]}
    cold = StateCache()
    with pytest.raises(RuntimeError, match="disagrees with its stream"):
        await states(sessions, cold, beyond)
    # read ahead without locks: the wallet that moved is left out, the other one is read
    assert await states(sessions, cold, beyond, strict=False) == {B: whole[B]}
    assert cold.get(A, beyond[A]) is None
