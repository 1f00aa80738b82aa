"""Batched consumers of the read models (payments: accounts and the ledger's grants; the
catalogue: accounts and seats): a fetched batch applied in a few multi-row statements leaves
exactly what the same messages applied one at a time leave, each aggregate's events in their
order; a poisoned event in the middle is dead-lettered alone while its neighbours are
applied; a batch delivered twice changes nothing the second time. On the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ila.registry import definition
from shared.bus import Message, topic_for
from shared.db import driver, make_engine, make_sessionmaker, migrate, transaction
from shared.events import Envelope, Event
from shared.events.accounts import (
    AccountClosed,
    AccountOpened,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
    NeedProfile,
)
from shared.events.ledger import CreditsGranted, Earmark
from shared.events.payments import EnrolmentCancelled, EnrolmentConfirmed, EnrolmentRejected
from shared.inbox import EventConsumer
from shared.service import standalone_runtime
from shared.settings import Settings
from tests.support import create_database

pytestmark = pytest.mark.postgres

NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))
E1, E2, E3 = (uuid.UUID(int=i) for i in (11, 12, 13))
COURSE, SESSION = uuid.UUID(int=21), uuid.UUID(int=22)


def message(event: Event, event_id: uuid.UUID | None = None) -> Message:
    envelope = Envelope.wrap(event, source="/ila/test", event_id=event_id)
    return Message(topic_for(type(event).topic), event.aggregate_id(), envelope.to_bytes())


def opened(account: uuid.UUID, agency: str = "pes-fr", tier: str = "standard") -> AccountOpened:
    return AccountOpened(
        account_id=account,
        agency_id=agency,
        profile=NeedProfile(
            qualification_level=3,
            employment_status="employed",
            need_tier=tier,  # type: ignore[arg-type]
        ),
        opened_at=NOW,
    )


def granted(account: uuid.UUID, lot: int, funder: str = "state", **extra: Any) -> CreditsGranted:
    return CreditsGranted(
        account_id=account,
        occurred_at=NOW,
        lot_id=uuid.UUID(int=100 + lot),
        amount=1_000 * lot,
        funder_id=funder,
        reason_code="top_up",
        kind="top_up",
        **extra,
    )


def enrolment(kind: type[Event], eid: uuid.UUID, **extra: Any) -> Event:
    common = {
        "enrolment_id": eid,
        "account_id": A,
        "provider_id": "p1",
        "course_id": COURSE,
        "session_id": SESSION,
    }
    return kind(**common, **extra)


CONFIRMED = {"price": 100, "covered": 100, "co_payment": 0, "participation_fee": 0}

# several events of one account, in an order that matters, between other accounts' events
PAYMENTS: list[Event] = [
    opened(A),
    granted(A, 1),
    AccountSuspended(account_id=A, reason_code="fraud_suspected"),
    opened(B, tier="high"),
    AccountTransferred(account_id=A, from_agency_id="pes-fr", to_agency_id="pes-b"),
    granted(B, 2, earmark=Earmark(isced_fields=["06"]), expires_at=NOW.replace(year=2033)),
    AccountProfileUpdated(
        account_id=B, profile=NeedProfile(qualification_level=2, employment_status="unemployed")
    ),
    AccountReinstated(account_id=A, reason_code="other"),
    AccountSuspended(account_id=B, reason_code="other"),
    AccountClosed(account_id=B, reason_code="other"),
    opened(A, agency="pes-c"),  # an account opened again keeps its status, takes the rest
    AccountProfileUpdated(  # a profile for an account payments never saw: nothing to update
        account_id=C, profile=NeedProfile(qualification_level=2, employment_status="employed")
    ),
]

CATALOGUE: list[Event] = [
    opened(A),
    enrolment(EnrolmentConfirmed, E1, **CONFIRMED),
    AccountTransferred(account_id=A, from_agency_id="pes-fr", to_agency_id="pes-b"),
    enrolment(EnrolmentConfirmed, E2, **CONFIRMED),
    enrolment(EnrolmentCancelled, E1, cancelled_by="learner", rule="r", provider_share=0),
    opened(B),
    enrolment(EnrolmentRejected, E3, status="rejected", reason="x"),  # late: recorded freed
    enrolment(EnrolmentConfirmed, E3, **CONFIRMED),  # after its end: stays freed
    enrolment(EnrolmentConfirmed, E1, **CONFIRMED),  # redelivered confirmation: still freed
]

TABLES = {
    "payments": {
        "accounts": "SELECT account_id, agency_id, status, employment_status, need_tier "
        "FROM payments.accounts ORDER BY account_id",
        "lots": "SELECT * FROM payments.lots ORDER BY lot_id",
        "inbox": "SELECT event_id, type, topic, outcome, error FROM payments.inbox "
        "ORDER BY event_id",
        "dead_letters": "SELECT event_id, error FROM payments.dead_letters ORDER BY event_id",
    },
    "catalogue": {
        "accounts": "SELECT account_id, agency_id FROM catalogue.accounts ORDER BY account_id",
        "seats": "SELECT enrolment_id, course_id, session_id, live "
        "FROM catalogue.session_enrolments ORDER BY enrolment_id",
        "inbox": "SELECT event_id, type, topic, outcome, error FROM catalogue.inbox "
        "ORDER BY event_id",
        "dead_letters": "SELECT event_id, error FROM catalogue.dead_letters ORDER BY event_id",
    },
}


class Service:
    def __init__(self, name: str, engine: AsyncEngine, *, batched: bool = True) -> None:
        self.name, self.engine = name, engine
        self.consumer: EventConsumer = standalone_runtime(
            definition(name), Settings(), engine
        ).consumer
        self.consumer.retry_delay = 0
        if not batched:
            self.consumer.batch_handlers.clear()

    async def tables(self) -> dict[str, list[dict[str, Any]]]:
        async with self.engine.connect() as conn:
            return {
                name: [dict(r) for r in (await conn.execute(text(sql))).mappings()]
                for name, sql in TABLES[self.name].items()
            }


@pytest.fixture
async def engines(db_url: str, pg_admin_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    one = make_engine(db_url, pool_size=2)
    two = make_engine(await create_database(pg_admin_url), pool_size=2)
    for engine in (one, two):
        for service in ("payments", "catalogue"):
            await migrate(engine, service)
    yield one, two
    for engine in (one, two):
        await engine.dispose()


async def deliver(service: Service, messages: Sequence[Message]) -> None:
    await service.consumer.handle_batch(messages)


@pytest.mark.parametrize("name", ["payments", "catalogue"])
async def test_a_batch_leaves_what_one_at_a_time_leaves(
    engines: tuple[AsyncEngine, AsyncEngine], name: str
) -> None:
    messages = [message(e) for e in (PAYMENTS if name == "payments" else CATALOGUE)]
    single = Service(name, engines[0], batched=False)
    batched = Service(name, engines[1])
    assert batched.consumer.batch_handlers, "the service registers a batch handler"
    for m in messages:
        await deliver(single, [m])
    await deliver(batched, messages)
    expected, got = await single.tables(), await batched.tables()
    assert got == expected
    assert len(got["inbox"]) == len(messages)
    if name == "payments":
        assert [(r["agency_id"], r["status"]) for r in got["accounts"]] == [
            ("pes-c", "active"),
            ("pes-fr", "closed"),
        ]
        assert got["accounts"][1]["employment_status"] == "unemployed"
        assert got["lots"][1]["earmark"]["isced_fields"] == ["06"]
    else:
        assert [r["agency_id"] for r in got["accounts"]] == ["pes-b", "pes-fr"]
        assert [r["live"] for r in got["seats"]] == [False, True, False]


@pytest.mark.parametrize("name", ["payments", "catalogue"])
async def test_a_batch_delivered_twice_changes_nothing_the_second_time(
    engines: tuple[AsyncEngine, AsyncEngine], name: str
) -> None:
    messages = [message(e) for e in (PAYMENTS if name == "payments" else CATALOGUE)]
    service = Service(name, engines[0])
    once = Service(name, engines[1])
    await deliver(once, messages)
    # the same batch twice, and within it one message twice
    await deliver(service, [*messages[:3], messages[1], *messages[3:]])
    first = await service.tables()
    await deliver(service, messages)
    second = await service.tables()
    assert second == first == await once.tables()


async def test_a_poisoned_event_is_dead_lettered_alone_and_its_neighbours_applied(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    service = Service("payments", engines[0])
    poisoned_db = message(granted(B, 3, funder="state\x00"))  # valid, refused by PostgreSQL
    unreadable_payload = message(granted(B, 4))
    envelope = Envelope.from_bytes(unreadable_payload.value)
    broken = envelope.model_copy(update={"data": {**envelope.data, "amount": -5}})
    poisoned_model = Message(unreadable_payload.topic, unreadable_payload.key, broken.to_bytes())
    messages = [
        message(opened(A)),
        message(granted(A, 1)),
        poisoned_db,
        message(opened(B)),
        poisoned_model,
        message(granted(B, 2)),
        message(AccountSuspended(account_id=B, reason_code="other")),
    ]
    await deliver(service, messages)
    tables = await service.tables()
    print(tables)
    assert [r["lot_id"].int - 100 for r in tables["lots"]] == [1, 2]
    assert [(r["account_id"], r["status"]) for r in tables["accounts"]] == [
        (A, "active"),
        (B, "suspended"),
    ]
    dead = {r["event_id"]: r["error"] for r in tables["dead_letters"]}
    ids = {Envelope.from_bytes(m.value).id for m in (poisoned_db, poisoned_model)}
    assert set(dead) == ids
    outcomes = {r["event_id"]: r["outcome"] for r in tables["inbox"]}
    assert len(outcomes) == len(messages)
    assert {i: outcomes[i] for i in ids} == dict.fromkeys(ids, "dead_lettered")
    assert list(outcomes.values()).count("applied") == len(messages) - 2
    # delivered again: nothing more applied, nothing more dead-lettered
    await deliver(service, messages)
    assert await service.tables() == tables


async def test_a_statement_on_the_driver_belongs_to_the_sessions_transaction(db_url: str) -> None:
    """The multi-row statements run on asyncpg directly; SQLAlchemy's adapter sends BEGIN only
    with its own first statement, so the driver's must not run before it in autocommit."""
    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE probe (n int)"))
        with pytest.raises(RuntimeError):
            async with transaction(make_sessionmaker(engine)) as session:
                await (await driver(session)).execute("INSERT INTO probe VALUES (1)")
                raise RuntimeError("rolled back")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM probe")) == 0
    finally:
        await engine.dispose()
