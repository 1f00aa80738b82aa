"""Group commit: a batch of commands decided together leaves exactly what the same commands
executed one by one leave (events, hashes, projections, outbox), a refused command is
answered alone, and verify passes after."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.ledger import consumers
from services.ledger.audit import verify
from services.ledger.commands import (
    CaptureReservation,
    Command,
    GrantCredits,
    NoteProfile,
    OpenWallet,
    ReleaseReservation,
    ReserveCredits,
)
from services.ledger.deps import LedgerComponents
from services.ledger.domain import WalletState
from services.ledger.handlers import Ledger, StateCache
from services.ledger.handlers.wallets import Outcome, execute, execute_many
from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.db import make_engine, make_sessionmaker, migrate, transaction
from shared.errors import DomainError
from shared.events import Envelope
from shared.events.accounts import AccountProfileUpdated, NeedProfile
from shared.events.ledger import CourseRef, WalletProfile
from shared.events.payments import CaptureRequested, EnrolmentRequested
from shared.inbox import EventConsumer
from shared.outbox import EventContext, Outbox
from shared.service import components_of
from tests.integration.support import funders
from tests.integration.support.ledger import Api
from tests.support import create_database

pytestmark = pytest.mark.postgres

NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
COURSE = CourseRef(course_id=uuid.UUID(int=7), isced_field="0613", eqf_level=5)
A, B, C, NEW, MISSING = (uuid.UUID(int=i) for i in (101, 102, 103, 104, 105))
R1, R2, R3 = (uuid.UUID(int=i) for i in (201, 202, 203))
LOT_A, LOT_B = uuid.UUID(int=301), uuid.UUID(int=302)
CTX = EventContext(correlation_id=uuid.UUID(int=1), actor="test")


def grant(account: uuid.UUID, lot: uuid.UUID, amount: int) -> GrantCredits:
    return GrantCredits(account_id=account, lot_id=lot, amount=amount, funder_id="state")


def reserve(account: uuid.UUID, rid: uuid.UUID, amount: int) -> ReserveCredits:
    return ReserveCredits(
        account_id=account,
        reservation_id=rid,
        enrolment_id=uuid.UUID(int=rid.int + 1000),
        amount=amount,
        course=COURSE,
    )


SETUP: list[Command] = [
    OpenWallet(account_id=A),
    grant(A, LOT_A, 1_000),
    OpenWallet(account_id=B),
    grant(B, LOT_B, 500),
    OpenWallet(account_id=C),
]

# good and refused commands over several accounts, some accounts more than once
BATCH: list[Command] = [
    reserve(A, R1, 300),
    reserve(B, R2, 10_000),  # more than B has: a ReservationRejected event, not an error
    CaptureReservation(account_id=A, reservation_id=R1, amount=200),  # A again, after R1
    CaptureReservation(account_id=C, reservation_id=R3, amount=1),  # refused: no such
    grant(B, uuid.UUID(int=303), 250),
    NoteProfile(
        account_id=MISSING,
        profile=WalletProfile(qualification_level=3, employment_status="employed"),
    ),  # refused: no wallet
    grant(B, LOT_B, 50),  # refused: lot id taken by another request
    OpenWallet(account_id=NEW),  # a stream born in the batch
    grant(NEW, uuid.UUID(int=304), 70),
    ReleaseReservation(account_id=A, reservation_id=R1),  # refused: already captured
    reserve(A, R3, 100),  # A a fourth time
    OpenWallet(account_id=A),  # nothing to do
]


async def run(url: str, batched: bool) -> tuple[list[Any], dict[str, list[dict[str, Any]]]]:
    engine = make_engine(url)
    await migrate(engine, "ledger")
    sessions = make_sessionmaker(engine)
    ledger = Ledger(Outbox("ledger"))
    counter = itertools.count(1)
    uuid.uuid4 = lambda: uuid.UUID(int=next(counter))  # type: ignore[assignment]
    try:
        for command in SETUP:
            async with transaction(sessions) as s:
                await execute(command, ledger.context(s, CTX, now=NOW - timedelta(days=1)))
        answers: list[Outcome | DomainError] = []
        if batched:
            async with transaction(sessions) as s:
                answers = await execute_many(
                    [(c, CTX) for c in BATCH], ledger.context(s, CTX, now=NOW)
                )
        else:
            for command in BATCH:
                try:
                    async with transaction(sessions) as s:
                        answers.append(await execute(command, ledger.context(s, CTX, now=NOW)))
                except DomainError as refused:
                    answers.append(refused)
        async with sessions() as s:
            report = await verify(s)
            assert report.ok, report.mismatches
            tables = {
                t: [dict(r) for r in (await s.execute(text(sql))).mappings()]
                for t, sql in {
                    "events": "SELECT * FROM ledger.events ORDER BY position",
                    "wallets": "SELECT * FROM ledger.wallets ORDER BY account_id",
                    "lots": "SELECT * FROM ledger.lots ORDER BY lot_id",
                    "reservations": "SELECT * FROM ledger.reservations ORDER BY reservation_id",
                    "outbox": "SELECT event_id, topic, key, type FROM ledger.outbox ORDER BY id",
                }.items()
            }
    finally:
        await engine.dispose()
    summary = [
        (type(a).__name__, a.code)
        if isinstance(a, DomainError)
        else ([type(e).__name__ for e in a.events], a.state)
        for a in answers
    ]
    return summary, tables


@pytest.fixture
async def two_databases(db_url: str, pg_admin_url: str) -> AsyncIterator[tuple[str, str]]:
    original = uuid.uuid4
    yield db_url, await create_database(pg_admin_url)
    uuid.uuid4 = original  # type: ignore[assignment]


async def test_a_batch_leaves_what_one_by_one_leaves(two_databases: tuple[str, str]) -> None:
    one_by_one, batch = two_databases
    expected, expected_tables = await run(one_by_one, batched=False)
    got, tables = await run(batch, batched=True)
    assert got == expected
    for name in expected_tables:
        assert tables[name] == expected_tables[name], name
    codes = [a[1] for a in got if isinstance(a[1], str)]
    assert codes == [
        "reservation_not_found",
        "wallet_not_found",
        "id_conflict",
        "reservation_not_active",
    ]
    assert ["ReservationRejected"] in [a[0] for a in got]
    assert len(expected_tables["events"]) > len(SETUP)


async def test_a_batch_is_one_statement_per_table_and_uses_the_cache(db_url: str) -> None:
    engine = make_engine(db_url)
    await migrate(engine, "ledger")
    sessions = make_sessionmaker(engine)
    ledger = Ledger(Outbox("ledger"), cache=StateCache())
    try:
        async with transaction(sessions) as s:
            await execute_many([(c, CTX) for c in SETUP], ledger.context(s, CTX, now=NOW))
        cold = Ledger(Outbox("ledger"), cache=StateCache())  # replays the misses
        async with transaction(sessions) as s:
            answers = await execute_many(
                [(reserve(A, R1, 100), CTX), (reserve(B, R2, 100), CTX)],
                cold.context(s, CTX, now=NOW),
            )
        assert all(isinstance(a, Outcome) and a.events for a in answers)
        async with transaction(sessions) as s:
            again = await execute_many([(reserve(A, R1, 100), CTX)], cold.context(s, CTX, now=NOW))
        assert isinstance(again[0], Outcome) and again[0].events == []  # redelivery
        async with sessions() as s:
            assert (await verify(s)).ok
        state = again[0].state
        assert isinstance(state, WalletState) and state.reserved == 100
    finally:
        await engine.dispose()


async def test_a_consumer_batch_is_decided_together_and_a_refusal_is_dead_lettered_alone(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(db_url)
    await migrate(engine, "ledger")
    sessions = make_sessionmaker(engine)
    ledger = Ledger(Outbox("ledger"))
    bus = InProcessBus()
    consumer = EventConsumer("ledger", sessions, bus, retry_delay=0)
    consumers.register(consumer, ledger)
    try:
        async with transaction(sessions) as s:
            await execute_many([(c, CTX) for c in SETUP], ledger.context(s, CTX, now=NOW))

        def message(event: Any) -> Message:
            envelope = Envelope.wrap(event, source="/ila/payments")
            return Message("ila.payments", str(event.account_id), envelope.to_bytes())

        def requested(account: uuid.UUID, rid: uuid.UUID, amount: int) -> EnrolmentRequested:
            return EnrolmentRequested(
                enrolment_id=uuid.uuid4(),
                account_id=account,
                reservation_id=rid,
                provider_id="p1",
                course=COURSE,
                course_version=1,
                amount=amount,
            )

        first = message(requested(A, R1, 300))
        refused = message(
            CaptureRequested(
                enrolment_id=uuid.uuid4(),
                account_id=C,
                reservation_id=R3,
                claim_id=uuid.uuid4(),
                amount=5,
            )
        )
        dead = message(
            AccountProfileUpdated(
                account_id=MISSING,
                profile=NeedProfile(qualification_level=3, employment_status="employed"),
            )
        )
        batch = [
            first,
            message(requested(B, R2, 200)),
            refused,
            dead,
            first,  # the same event twice in one batch
            message(
                CaptureRequested(
                    enrolment_id=uuid.uuid4(),
                    account_id=A,
                    reservation_id=R1,
                    claim_id=uuid.uuid4(),
                    amount=300,
                )
            ),
        ]
        await consumer.handle_batch(batch)
        await consumer.handle_batch([first])  # redelivered later
        assert "one at a time" not in caplog.text  # decided as a batch, not the fallback
        async with sessions() as s:
            wallets = {
                r.account_id: r for r in await s.execute(text("SELECT * FROM ledger.wallets"))
            }
            inbox = dict(
                (r.event_id, r.outcome)
                for r in await s.execute(text("SELECT event_id, outcome FROM ledger.inbox"))
            )
            rejected = list(
                await s.scalars(
                    text("SELECT type FROM ledger.events WHERE stream_id = :c AND version > 1"),
                    {"c": C},
                )
            )
            dead_letters = (
                await s.execute(text("SELECT body, error FROM ledger.dead_letters"))
            ).all()
            assert (await verify(s)).ok
        assert wallets[A].available == 700 and wallets[A].reserved == 0
        assert wallets[B].reserved == 200
        assert sorted(inbox.values()) == ["applied"] * 4 + ["dead_lettered"]
        # a capture the wallet refuses is answered with its refusal, the rest dead-lettered
        assert [(bytes(d.body), "WalletNotFound" in d.error) for d in dead_letters] == [
            (dead.value, True)
        ]
        assert rejected == ["ila.ledger.CaptureRejected.v1"]
    finally:
        await engine.dispose()


async def test_grants_that_arrive_together_are_answered_each_alone(api: Api) -> None:
    committer = components_of(api.rt, LedgerComponents).committer
    committer.window = 0.2  # wide enough that the requests below share a batch
    mine, other = await api.account(), await api.account()
    transferred = await api.account()
    async with api.rt.sessions() as s, s.begin():
        await s.execute(
            text("UPDATE ledger.account_agencies SET agency_id = 'pes-be' WHERE account_id = :a"),
            {"a": transferred},
        )
    taken = await api.grant(mine, 10, key="taken")
    assert taken.status_code == 201
    employer = await funders.funder(api)
    requests = [
        (mine, 100, "k1"),
        (other, 200, "k2"),
        (mine, 300, "k3"),  # the same wallet again
        (transferred, 400, "k4"),  # outside the agency's scope: 404, nothing written
        (str(uuid.uuid4()), 500, "k5"),  # no such wallet
        (mine, 600, "taken"),  # a key used for another request: 422
        (other, 200, "k2"),  # the same request twice in one batch: one grant, one answer
        (other, 700, "k6"),  # names a registered funder, whose top-ups come from its budget
    ]
    batches = committer.batches
    answers = await asyncio.gather(
        *(
            api.grant(a, n, key=k, **({"funder_id": employer} if k == "k6" else {}))
            for a, n, k in requests
        )
    )
    assert committer.batches - batches == 2  # the repeated key waited for the next batch
    assert [r.status_code for r in answers] == [201, 201, 201, 404, 404, 422, 201, 422]
    assert answers[7].json()["code"] == "funder_grants_from_budget"
    assert answers[1].json() == answers[6].json()
    versions = sorted([answers[0].json()["version"], answers[2].json()["version"]])
    assert versions[1] == versions[0] + 1  # one wallet twice in a batch: folded in turn
    assert (await api.balance(mine))["available"] == 410
    assert (await api.balance(other))["available"] == 200
    # a refused request changed nothing, its key included: it may be used again
    again = await api.grant(mine, 800, key="k4")
    assert again.status_code == 201
    replay = await api.grant(mine, 800, key="k4")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == again.json()
    async with api.rt.sessions() as s:
        assert (await verify(s)).ok
