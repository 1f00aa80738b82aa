"""The accounts consumer applies a fetched batch of the ledger's lot moves and payments'
proposals and answers together (``services.accounts.batched``): the result is what the same
messages applied one at a time leave (lots kept for expiry notices, proposals kept and
answered, the learners' messages about them, trainings of the statistics), each lot's and
each enrolment's events in their order; a poisoned event in
the middle is dead-lettered alone while its neighbours are applied; a batch delivered twice
changes nothing the second time. On the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ila.registry import definition
from services.accounts.handlers.accounts import AccountsConfig
from services.accounts.handlers.personal import encrypt_personal, new_key
from services.accounts.store import accounts as accounts_store
from services.accounts.store import messages as messages_store
from shared.bus import Message, topic_for
from shared.db import make_engine, migrate
from shared.events import Envelope, Event
from shared.events.ledger import (
    CourseRef,
    CreditsGranted,
    CreditsReserved,
    EntryReversed,
    LotAmount,
    LotExpired,
    ReservationCaptured,
    ReservationReleased,
)
from shared.events.payments import (
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentProposed,
    EnrolmentRejected,
    EnrolmentRequested,
)
from shared.inbox import EventConsumer
from shared.service import standalone_runtime
from shared.settings import Settings
from tests.support import create_database

pytestmark = pytest.mark.postgres

NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)
L1, L2, L3, L4 = (uuid.UUID(int=100 + i) for i in range(1, 5))
E1, E2, E3, E4, E5, E6, E7 = (uuid.UUID(int=10 + i) for i in range(1, 8))
C, D = uuid.UUID(int=3), uuid.UUID(int=4)
R1, R2 = uuid.UUID(int=31), uuid.UUID(int=32)
COURSE, SESSION = uuid.UUID(int=21), uuid.UUID(int=22)


def message(event: Event) -> Message:
    envelope = Envelope.wrap(event, source="/ila/test")
    return Message(topic_for(type(event).topic), event.aggregate_id(), envelope.to_bytes())


def lots(*amounts: tuple[uuid.UUID, int]) -> tuple[LotAmount, ...]:
    return tuple(LotAmount(lot_id=lot, amount=amount) for lot, amount in amounts)


def granted(
    account: uuid.UUID, lot: uuid.UUID, amount: int, *, expires: bool = True, funder: str = "s"
) -> CreditsGranted:
    return CreditsGranted(
        account_id=account,
        occurred_at=NOW,
        lot_id=lot,
        amount=amount,
        funder_id=funder,
        reason_code="top_up",
        kind="top_up",
        expires_at=LATER if expires else None,
    )


def reserved(account: uuid.UUID, *amounts: tuple[uuid.UUID, int]) -> CreditsReserved:
    total = sum(a for _, a in amounts)
    return CreditsReserved(
        account_id=account,
        occurred_at=NOW,
        reservation_id=R1,
        enrolment_id=E1,
        course=CourseRef(course_id=COURSE),
        requested=total,
        amount=total,
        up_to=False,
        allocations=lots(*amounts),
        expires_at=LATER,
    )


def outcome(kind: type[Event], eid: uuid.UUID, account_id: uuid.UUID = A, **extra: Any) -> Event:
    common = {
        "enrolment_id": eid,
        "account_id": account_id,
        "provider_id": "p1",
        "course_id": COURSE,
        "session_id": SESSION,
    }
    return kind(**common, **extra)


CONFIRMED = {"price": 100, "covered": 100, "co_payment": 0, "participation_fee": 0}


def proposed(
    eid: uuid.UUID, account: uuid.UUID = A, days: int = 7, price: int = 100
) -> EnrolmentProposed:
    return EnrolmentProposed(
        enrolment_id=eid,
        account_id=account,
        provider_id="p1",
        course_id=COURSE,
        course_version=1,
        session_id=SESSION,
        starts_on=date(2031, 4, 1),
        ends_on=date(2031, 4, 30),
        price=price,
        co_payment=0,
        expires_at=NOW + timedelta(days=days),
    )


def events() -> list[Event]:
    """Each lot's and each enrolment's events in an order that matters, interleaved."""
    return [
        proposed(E1),
        proposed(E3),
        proposed(E4, B, price=250),  # B has a language of their own
        proposed(E5, C),  # C has no e-mail address: no message
        proposed(E6, D),  # D is erased: no message
        # a move of lot 3 before its grant: it moves nothing (the lot is not kept yet)
        reserved(A, (L3, 50)),
        granted(A, L1, 1_000),
        granted(A, L2, 500, expires=False),  # not kept: its moves are skipped
        outcome(EnrolmentConfirmed, E1, **CONFIRMED, isced_field="0613"),
        granted(A, L3, 300),
        reserved(A, (L1, 400), (L2, 100), (L3, 100)),
        outcome(EnrolmentConfirmed, E2, **CONFIRMED),
        granted(B, L4, 700),
        ReservationCaptured(
            account_id=A,
            occurred_at=NOW,
            reservation_id=R1,
            enrolment_id=E1,
            amount=300,
            released=200,
            allocations=lots((L1, 300)),
            released_allocations=lots((L1, 100), (L2, 100)),
        ),
        outcome(EnrolmentCancelled, E1, cancelled_by="learner", rule="r", provider_share=0),
        ReservationReleased(
            account_id=A,
            occurred_at=NOW,
            reservation_id=R2,
            enrolment_id=E1,
            amount=100,
            allocations=lots((L3, 100)),
            reason="cancelled",
        ),
        outcome(EnrolmentCancelled, E2, cancelled_by="learner", rule="r", provider_share=10),
        LotExpired(account_id=B, occurred_at=NOW, lot_id=L4, amount=200),
        EntryReversed(
            account_id=A,
            occurred_at=NOW,
            target_event="ledger.CreditsGranted",
            target_version=3,
            lot_id=L3,
            amount=100,
            allocations=lots((L3, 100)),
            reason_code="wrong_amount",
            actor="admin",
        ),
        EntryReversed(
            account_id=A,
            occurred_at=NOW,
            target_event="ledger.ReservationCaptured",
            target_version=5,
            reservation_id=R1,
            amount=50,
            allocations=lots((L1, 50)),
            reason_code="provider_error",
            actor="admin",
        ),
        outcome(EnrolmentConfirmed, E1, **CONFIRMED, isced_field="0714"),  # after its cancel
        EnrolmentRequested(
            enrolment_id=E3,
            account_id=A,
            reservation_id=R2,
            provider_id="p1",
            course=CourseRef(course_id=COURSE),
            course_version=1,
            amount=100,
        ),
        outcome(EnrolmentRejected, E3, status="rejected", reason="x"),
        granted(A, L1, 9_999),  # the same lot told again: kept as it is
        # E4 answered, then proposed again with a new deadline (it waits again, a second
        # message), told again (nothing new), answered, proposed once more as it stands
        outcome(EnrolmentRejected, E4, account_id=B, status="rejected", reason="x"),
        proposed(E4, B, days=9, price=250),
        proposed(E4, B, days=9, price=250),
        outcome(EnrolmentRejected, E4, account_id=B, status="rejected", reason="x"),
        proposed(E4, B, days=9, price=250),
        # E7: answered before its proposal came (out of order): the proposal waits
        outcome(EnrolmentRejected, E7, account_id=A, status="rejected", reason="x"),
        proposed(E7),
    ]


TABLES = {
    "lots": "SELECT * FROM accounts.credit_lots ORDER BY lot_id",
    "proposals": "SELECT enrolment_id, expires_at, answered FROM accounts.proposals "
    "ORDER BY enrolment_id",
    "mail": "SELECT fact_key, kind, person, recipient, language, subject, body "
    "FROM accounts.outgoing_mail ORDER BY fact_key",
    "trainings": "SELECT * FROM accounts.trainings ORDER BY enrolment_id",
    "inbox": "SELECT event_id, type, topic, outcome, error FROM accounts.inbox ORDER BY event_id",
    "dead_letters": "SELECT event_id, error FROM accounts.dead_letters ORDER BY event_id",
}


class Service:
    def __init__(self, engine: AsyncEngine, *, batched: bool = True) -> None:
        self.engine = engine
        self.consumer: EventConsumer = standalone_runtime(
            definition("accounts"), Settings(), engine
        ).consumer
        self.consumer.retry_delay = 0
        if not batched:
            self.consumer.batch_handlers.clear()

    async def deliver(self, messages: Sequence[Message]) -> None:
        await self.consumer.handle_batch(messages)

    async def tables(self) -> dict[str, list[dict[str, Any]]]:
        async with self.engine.connect() as conn:
            return {
                name: [dict(r) for r in (await conn.execute(text(sql))).mappings()]
                for name, sql in TABLES.items()
            }


async def learners(engine: AsyncEngine) -> None:
    """A and B with an e-mail address (B reads French), C without one, D erased."""
    keyring = AccountsConfig.from_settings(Settings()).keyring
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        for account, email in ((A, "a@example.org"), (B, "b@example.org"), (C, None), (D, "d@x")):
            key = new_key()
            personal = {"given_name": "N", "email": email} if email else {"given_name": "N"}
            nonce, blob = encrypt_personal(key, account, personal)
            row = {
                "account_id": account,
                "national_id_hash": f"hash-{account}",
                "agency_id": "pes-fr",
                "country": "FR",
                "region": "FR-IDF",
                "qualification_level": 3,
                "employment_status": "employed",
                "need_tier": "standard",
                "personal_nonce": nonce,
                "personal_ciphertext": blob,
                "birth_year": 1990,
                "opened_at": NOW,
                "employer_id": None,
            }
            assert await accounts_store.insert_account(session, row, keyring.wrap(account, key))
        await messages_store.put_preferences(session, B, messages_store.Preferences("fr"), NOW)
        await accounts_store.mark_erased(session, D)


@pytest.fixture
async def engines(db_url: str, pg_admin_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    one = make_engine(db_url, pool_size=2)
    two = make_engine(await create_database(pg_admin_url), pool_size=2)
    for engine in (one, two):
        await migrate(engine, "accounts")
        await learners(engine)
    yield one, two
    for engine in (one, two):
        await engine.dispose()


async def test_a_batch_leaves_what_one_at_a_time_leaves(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    messages = [message(e) for e in events()]
    single, batched = Service(engines[0], batched=False), Service(engines[1])
    assert batched.consumer.batch_handlers, "accounts registers a batch handler"
    for m in messages:
        await single.deliver([m])
    await batched.deliver(messages)
    expected, got = await single.tables(), await batched.tables()
    assert got == expected
    assert len(got["inbox"]) == len(messages)
    assert got["dead_letters"] == []
    # what the ledger's wallet holds of each kept lot: (granted, remaining, reserved)
    assert {r["lot_id"]: (r["granted"], r["remaining"], r["reserved"]) for r in got["lots"]} == {
        L1: (1_000, 1_000 - 300 + 50, 0),
        L3: (300, 300 - 100, 100 - 100),
        L4: (700, 500, 0),
    }
    assert [(r["enrolment_id"], r["answered"]) for r in got["proposals"]] == [
        (E1, True),
        (E3, True),
        (E4, True),
        (E5, False),
        (E6, False),
        (E7, False),
    ]
    # one message per proposal and deadline, to those with an address, in their language
    assert [(m["fact_key"].split(":")[1], m["language"]) for m in got["mail"]] == sorted(
        [(str(E1), "en"), (str(E3), "en"), (str(E4), "fr"), (str(E4), "fr"), (str(E7), "en")]
    )
    assert len({m["fact_key"] for m in got["mail"]}) == 5
    assert all(m["kind"] == "proposal_waiting" for m in got["mail"])
    # E1 cancelled with nothing kept, then confirmed again; E2 cancelled with a share kept
    assert [(r["enrolment_id"], r["isced_field"]) for r in got["trainings"]] == [
        (E1, "0714"),
        (E2, None),
    ]


async def test_a_batch_delivered_twice_changes_nothing_the_second_time(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    messages = [message(e) for e in events()]
    service, once = Service(engines[0]), Service(engines[1])
    await once.deliver(messages)
    # the same batch twice, and within it one message (a reservation) twice
    await service.deliver([*messages[:8], messages[7], *messages[8:]])
    first = await service.tables()
    await service.deliver(messages)
    assert await service.tables() == first == await once.tables()


async def test_a_poisoned_event_is_dead_lettered_alone_and_its_neighbours_applied(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    service = Service(engines[0])
    poisoned_db = message(granted(B, L2, 100, funder="s\x00"))  # valid, refused by PostgreSQL
    readable = message(granted(B, L3, 100))
    envelope = Envelope.from_bytes(readable.value)
    broken = envelope.model_copy(update={"data": {**envelope.data, "amount": -5}})
    poisoned_model = Message(readable.topic, readable.key, broken.to_bytes())
    messages = [
        message(granted(A, L1, 1_000)),
        poisoned_db,
        message(reserved(A, (L1, 400))),
        poisoned_model,
        message(granted(B, L4, 700)),
        message(outcome(EnrolmentConfirmed, E1, **CONFIRMED)),
    ]
    await service.deliver(messages)
    tables = await service.tables()
    assert [(r["lot_id"], r["reserved"]) for r in tables["lots"]] == [(L1, 400), (L4, 0)]
    assert [r["enrolment_id"] for r in tables["trainings"]] == [E1]
    ids = {Envelope.from_bytes(m.value).id for m in (poisoned_db, poisoned_model)}
    assert {r["event_id"] for r in tables["dead_letters"]} == ids
    outcomes = {r["event_id"]: r["outcome"] for r in tables["inbox"]}
    assert len(outcomes) == len(messages)
    assert {i: outcomes[i] for i in ids} == dict.fromkeys(ids, "dead_lettered")
    assert list(outcomes.values()).count("applied") == len(messages) - 2
    # delivered again: nothing more applied, nothing more dead-lettered
    await service.deliver(messages)
    assert await service.tables() == tables
