"""The ledger's guarantees, each tried against the real PostgreSQL: no overdraft under
concurrency, events applied once, tampering named by verify, a tailing reader that never
skips an event committed late."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from services.ledger import consumers
from services.ledger.audit import verify
from services.ledger.commands import GrantCredits, OpenWallet, ReserveCredits
from services.ledger.domain import EntitlementPolicy
from services.ledger.handlers import Ledger
from services.ledger.handlers.allocation import _read_ahead, run_allocation, start_allocation
from services.ledger.handlers.wallets import execute
from services.ledger.store import audit as audit_reads
from services.ledger.store import events as event_store
from services.ledger.store import projections, runs
from shared.bus import Message, type_hint
from shared.bus.inprocess import InProcessBus
from shared.db import transaction
from shared.events import Envelope
from shared.events.ledger import CourseRef, CreditsGranted, CreditsReserved, WalletOpened
from shared.events.payments import EnrolmentRequested
from shared.inbox import EventConsumer
from shared.outbox import EventContext, Outbox, Relay
from tests.integration.support.ledger import Env, open_wallet

pytestmark = pytest.mark.postgres
COURSE = CourseRef(course_id=uuid.uuid4(), isced_field="0613", eqf_level=5)


async def test_100_concurrent_reservations_never_overdraw(env: Env) -> None:
    # credit for exactly 7 reservations of 3,000
    account = await open_wallet(env, 21_000 + 2_999)
    fresh = Ledger(Outbox("ledger"))  # no shared cache: every task loads from the database

    async def reserve() -> str:
        async with transaction(env.sessions) as s:
            outcome = await execute(
                ReserveCredits(
                    account_id=account,
                    reservation_id=uuid.uuid4(),
                    enrolment_id=uuid.uuid4(),
                    amount=3_000,
                    course=COURSE,
                ),
                fresh.context(s, EventContext.new("test")),
            )
        return type(outcome.events[0]).__name__

    results = await asyncio.gather(*(reserve() for _ in range(100)))
    assert results.count("CreditsReserved") == 7
    assert results.count("ReservationRejected") == 93
    async with env.sessions() as s:
        w = await projections.wallet(s, account)
        assert w is not None
        assert w["available"] == 2_999 and w["reserved"] == 21_000
        report = await verify(s)
    assert report.ok, report.mismatches


async def test_every_event_delivered_twice_is_applied_once(env: Env) -> None:
    account = await open_wallet(env, 10_000)
    bus = InProcessBus()
    consumer = EventConsumer("ledger", env.sessions, bus)
    consumers.register(consumer, env.ledger)
    request = EnrolmentRequested(
        enrolment_id=uuid.uuid4(),
        account_id=account,
        reservation_id=uuid.uuid4(),
        provider_id="p1",
        course=COURSE,
        course_version=1,
        amount=4_000,
    )
    env_ = Envelope.wrap(request, source="/ila/payments")
    message = Message("ila.payments", str(account), env_.to_bytes())
    await consumer.handle_batch([message, message])
    await consumer.handle_batch([message])
    async with env.sessions() as s:
        w = await projections.wallet(s, account)
        reserved = await s.scalar(
            text("SELECT count(*) FROM ledger.events WHERE type LIKE '%CreditsReserved%'")
        )
    assert w is not None and w["reserved"] == 4_000 and w["available"] == 6_000
    assert reserved == 1
    # the same command under a new event id (a retried request) is also applied once
    again = Envelope.wrap(request, source="/ila/payments")
    await consumer.handle_batch([Message("ila.payments", str(account), again.to_bytes())])
    async with env.sessions() as s:
        w = await projections.wallet(s, account)
    assert w is not None and w["reserved"] == 4_000


async def test_updates_and_deletes_are_refused_by_the_database(env: Env) -> None:
    await open_wallet(env, 1_000)
    for sql in (
        "UPDATE ledger.events SET data = '{}'::jsonb",
        "DELETE FROM ledger.events",
        "TRUNCATE ledger.events",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with transaction(env.sessions) as s:
                await s.execute(text(sql))
    # and the service's role has no such grants at all
    async with env.engine.connect() as conn:
        grants = await conn.scalar(
            text(
                "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM "
                "information_schema.role_table_grants WHERE grantee = 'ila_ledger_app' "
                "AND table_schema = 'ledger' AND table_name = 'events'"
            )
        )
    assert grants == "INSERT,SELECT"


@pytest.mark.parametrize("workers", [None, 2])  # in this process, and in worker processes
async def test_verify_names_the_stream_and_position_of_a_tampered_row(
    env: Env, workers: int | None
) -> None:
    victim = await open_wallet(env, 5_000)
    await open_wallet(env, 7_000)
    async with env.sessions() as s:
        assert (await verify(s)).ok
        position = await s.scalar(
            text(
                "SELECT position FROM ledger.events WHERE stream_id = :a AND type LIKE "
                "'%CreditsGranted%'"
            ),
            {"a": victim},
        )
    # a superuser goes behind the trigger's back
    async with env.engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text(
                "UPDATE ledger.events SET data = jsonb_set(data, '{amount}', '500000') "
                "WHERE position = :p"
            ),
            {"p": position},
        )
    async with env.sessions() as s:
        report = await verify(s, workers=workers)
    assert not report.ok
    assert any(
        m["stream"] == str(victim) and m["position"] == position and "hash" in m["problem"]
        for m in report.mismatches
    ), report.mismatches
    assert all(m["stream"] == str(victim) for m in report.mismatches)


async def test_allocation_grants_once_however_often_it_runs(env: Env) -> None:
    accounts = [await open_wallet(env) for _ in range(25)]
    policy = EntitlementPolicy(year=2027)
    first, created = await start_allocation(env.uow, 2027, "admin:test", policy=policy)
    assert created
    # interrupted after two batches of 10, as a crash would
    await run_allocation(env.uow, env.ledger, first, batch_size=10, stop_after_batches=2)
    await run_allocation(env.uow, env.ledger, first, batch_size=10)  # resumed
    second, created = await start_allocation(env.uow, 2027, "admin:test", policy=policy)
    assert created and second != first
    await run_allocation(env.uow, env.ledger, second, batch_size=7)
    async with env.sessions() as s:
        grants = await s.scalar(
            text("SELECT count(*) FROM ledger.events WHERE type LIKE '%CreditsGranted%'")
        )
        balances = [(await projections.wallet(s, a) or {})["available"] for a in accounts]
        run1 = await runs.get_allocation(s, first)
        run2 = await runs.get_allocation(s, second)
        assert (await verify(s)).ok
    assert grants == 25
    assert balances == [50_000] * 25
    assert run1 is not None and run1["status"] == "finished" and run1["granted_count"] == 25
    assert run2 is not None and run2["granted_count"] == 0 and run2["processed"] == 25


async def test_a_wallet_changed_after_its_batch_was_read_ahead_is_granted_as_it_is(
    env: Env,
) -> None:
    accounts = sorted([await open_wallet(env) for _ in range(6)])
    run, _ = await start_allocation(
        env.uow, 2029, "admin:test", policy=EntitlementPolicy(year=2029)
    )
    restarted = Ledger(Outbox("ledger"))  # its cache holds only what the read-ahead put
    # the second batch's states, read ahead as they stand now
    await _read_ahead(env.uow, restarted.cache, accounts[2], 3)
    async with env.sessions() as s:
        heads = await event_store.lock_heads_batch(s, accounts[2], 3, lock=False)
    assert [a for a, _ in heads] == accounts[3:]
    assert all(h.version == 1 and restarted.cache.get(a, h) is not None for a, h in heads)
    # then another writer (its own cache) tops up a wallet of that batch
    async with transaction(env.sessions) as s:
        await execute(
            GrantCredits(
                account_id=accounts[4],
                lot_id=uuid.uuid4(),
                amount=700,
                funder_id="state",
                reason_code="top_up",
            ),
            env.ledger.context(s, EventContext.new("test")),
        )
    await run_allocation(env.uow, restarted, run, batch_size=3)
    async with env.sessions() as s:
        done = await runs.get_allocation(s, run)
        wallet = await projections.wallet(s, accounts[4])
        assert (await verify(s)).ok
    assert done is not None and done["status"] == "finished" and done["granted_count"] == 6
    assert wallet is not None and wallet["available"] == 50_700 and wallet["version"] == 3


async def test_an_allocations_grants_give_way_to_a_reservation(env: Env) -> None:
    accounts = sorted([await open_wallet(env) for _ in range(30)])
    async with transaction(env.sessions) as s:
        opened = (await s.execute(text("SELECT type, bulk FROM ledger.outbox"))).all()
        assert opened == [(WalletOpened.cloudevent_type(), True)] * 30  # no one waits on them
        # the openings were published long ago
        await s.execute(text("UPDATE ledger.outbox SET sent_at = now()"))
    run, _ = await start_allocation(
        env.uow, 2030, "admin:test", policy=EntitlementPolicy(year=2030)
    )
    await run_allocation(env.uow, env.ledger, run, batch_size=10)
    learner = accounts[20]
    async with transaction(env.sessions) as s:
        outcome = await execute(
            ReserveCredits(
                account_id=learner,
                reservation_id=uuid.uuid4(),
                enrolment_id=uuid.uuid4(),
                amount=1_000,
                course=COURSE,
            ),
            env.ledger.context(s, EventContext.new("test")),
        )
        assert type(outcome.events[0]).__name__ == "CreditsReserved"
        flags = dict(
            (
                await s.execute(
                    text(
                        "SELECT type, bool_and(bulk) FROM ledger.outbox "
                        "WHERE sent_at IS NULL GROUP BY type"
                    )
                )
            ).all()
        )
    granted, reserved = CreditsGranted.cloudevent_type(), CreditsReserved.cloudevent_type()
    assert flags == {granted: True, reserved: False}
    bus, published = InProcessBus(), []

    async def collect(batch: Sequence[Message]) -> None:
        published.append([(m.key, type_hint(m)) for m in batch])

    bus.subscribe("probe", [env.ledger.outbox.topic], collect)
    await bus.start()
    relay = Relay(env.ledger.outbox, env.sessions, bus, batch_size=5)
    await relay.publish_once()
    # the reservation, after its wallet's grant (the 21st), and the 4 oldest grants
    assert published[0] == [
        *[(str(a), granted) for a in accounts[:4]],
        (str(learner), granted),
        (str(learner), reserved),
    ]
    await relay.drain()
    sent = [item for batch in published for item in batch]
    assert sorted(sent) == sorted(
        [(str(a), granted) for a in accounts] + [(str(learner), reserved)]
    )


async def test_allocation_written_in_chunks_is_whole_or_not_at_all(env: Env) -> None:
    accounts = sorted([await open_wallet(env) for _ in range(12)])
    policy = EntitlementPolicy(year=2028)
    # a statutory lot of 2028 behind the ledger's back for the 9th wallet: the third chunk
    # of the first batch fails on the unique index, after two chunks were written
    async with env.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ledger.lots (lot_id, account_id, funder_id, kind, year, amount, "
                "remaining, reserved, spent, expired, reason, granted_at) VALUES (:l, :a, "
                "'state', 'statutory', 2028, 1, 1, 0, 0, 0, 'statutory', now())"
            ),
            {"l": uuid.uuid4(), "a": accounts[8]},
        )
    run, _ = await start_allocation(env.uow, 2028, "admin:test", policy=policy)
    await run_allocation(env.uow, env.ledger, run, batch_size=10, chunk=3)
    async with env.sessions() as s:
        failed = await runs.get_allocation(s, run)
        grants = await s.scalar(
            text("SELECT count(*) FROM ledger.events WHERE type LIKE '%CreditsGranted%'")
        )
    assert failed is not None and failed["status"] == "failed"
    assert failed["failure_code"] == "grant_failed" and failed["processed"] == 0
    assert grants == 0  # the two chunks written before the failure rolled back with it
    async with env.engine.begin() as conn:
        await conn.execute(text("DELETE FROM ledger.lots WHERE year = 2028"))
    second, _ = await start_allocation(env.uow, 2028, "admin:test", policy=policy)
    await run_allocation(env.uow, env.ledger, second, batch_size=10, chunk=3)
    async with env.sessions() as s:
        done = await runs.get_allocation(s, second)
        counts = await s.execute(
            text(
                "SELECT (SELECT count(*) FROM ledger.events e WHERE e.type LIKE "
                "'%CreditsGranted%'), (SELECT count(*) FROM ledger.outbox o WHERE o.type LIKE "
                "'%CreditsGranted%'), (SELECT count(*) FROM ledger.lots WHERE year = 2028)"
            )
        )
        balances = [(await projections.wallet(s, a) or {})["available"] for a in accounts]
        assert (await verify(s)).ok
    assert done is not None and done["status"] == "finished" and done["granted_count"] == 12
    assert tuple(counts.one()) == (12, 12, 12)
    assert balances == [50_000] * 12


async def test_a_tailing_reader_never_skips_an_event_committed_late(env: Env) -> None:
    accounts = [await open_wallet(env) for _ in range(8)]
    seen: list[int] = []
    done = asyncio.Event()

    async def writer(account: uuid.UUID) -> None:
        for _ in range(25):
            async with transaction(env.sessions) as s:
                await execute(
                    GrantCredits(
                        account_id=account,
                        lot_id=uuid.uuid4(),
                        amount=100,
                        funder_id="state",
                        reason_code="top_up",
                    ),
                    env.ledger.context(s, EventContext.new("t")),
                )
                await asyncio.sleep(0.002)  # hold the transaction open a little

    async def reader() -> None:
        after = 0
        while True:
            finished = done.is_set()
            async with env.sessions() as s:
                upto = await audit_reads.horizon(s)
                rows = await audit_reads.events_page(s, after, upto, 50)
            for r in rows:
                seen.append(r.position)
                after = r.position
            if finished and not rows:
                return
            await asyncio.sleep(0.001)

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(a) for a in accounts))
    done.set()
    await task
    async with env.sessions() as s:
        all_positions = [
            r[0]
            for r in await s.execute(text("SELECT position FROM ledger.events ORDER BY position"))
        ]
    assert seen == all_positions


async def test_the_expiry_sweep_expires_lots_and_reservations_as_events(env: Env) -> None:
    from services.ledger.handlers.sweeps import sweep_once

    account = uuid.uuid4()
    now = datetime.now(UTC)
    ctx = EventContext.new("test")
    async with transaction(env.sessions) as s:
        await execute(OpenWallet(account_id=account), env.ledger.context(s, ctx))
        await execute(
            GrantCredits(
                account_id=account,
                lot_id=uuid.uuid4(),
                amount=7_000,
                funder_id="region",
                reason_code="top_up",
                expires_at=now + timedelta(days=30),
            ),
            env.ledger.context(s, ctx),
        )
        await execute(
            ReserveCredits(
                account_id=account,
                reservation_id=uuid.uuid4(),
                enrolment_id=uuid.uuid4(),
                amount=2_000,
                course=COURSE,
                expires_at=now + timedelta(days=10),
            ),
            env.ledger.context(s, ctx),
        )
    assert await sweep_once(env.uow, env.ledger, now + timedelta(days=1)) == 0
    # day 11: the reservation times out and its credit comes back
    assert await sweep_once(env.uow, env.ledger, now + timedelta(days=11)) == 1
    async with env.sessions() as s:
        w = await projections.wallet(s, account)
    assert w is not None and w["reserved"] == 0 and w["available"] == 7_000
    # day 31: the lot is past its date
    assert await sweep_once(env.uow, env.ledger, now + timedelta(days=31)) == 1
    assert await sweep_once(env.uow, env.ledger, now + timedelta(days=32)) == 0
    async with env.sessions() as s:
        w = await projections.wallet(s, account)
        types = [r.type.split(".")[-2] for r in await event_store.load_stream(s, account)]
        assert (await verify(s)).ok
    assert w is not None and w["available"] == 0 and w["expired_total"] == 7_000
    assert types[-2:] == ["ReservationReleased", "LotExpired"]
