"""Events a consumer cannot read are parked, never dropped, and applied after an upgrade;
older versions are brought up to date by upcasters; an event the relay's type header names
as one the consumer does not react to is not read at all. On the real PostgreSQL, through
the inbox consumer every service uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.bus import TYPE_HEADER, Message
from shared.bus.inprocess import InProcessBus
from shared.db import make_engine, make_sessionmaker
from shared.events import Envelope, Event, event
from shared.events import base as events_base
from shared.events.base import upcaster
from shared.inbox import EventConsumer
from shared.kernel_ddl import dead_letters_ddl, kernel_tables, parked_ddl

pytestmark = pytest.mark.postgres
TOPIC = "ila.probe"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url, pool_size=3)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA probe"))
        for ddl in [*kernel_tables("probe"), *parked_ddl("probe"), *dead_letters_ddl("probe")]:
            await conn.execute(text(ddl))
        await conn.execute(text("CREATE TABLE probe.effects (n bigserial, what text)"))
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """The probe's event types exist only for the test that defines them."""
    before, upcasters = dict(events_base._REGISTRY), dict(events_base._UPCASTERS)
    yield
    events_base._REGISTRY.clear()
    events_base._REGISTRY.update(before)
    events_base._UPCASTERS.clear()
    events_base._UPCASTERS.update(upcasters)


def raw(
    ce_type: str, data: dict[str, Any], event_id: uuid.UUID | None = None, *, hint: bool = False
) -> Message:
    """A message as a producer of another version would send it (with the relay's type
    header when ``hint``)."""
    eid = event_id or uuid.uuid4()
    envelope = Envelope(
        id=eid,
        source="/ila/probe",
        type=ce_type,
        subject="k",
        time=datetime.now(UTC),
        correlationid=eid,
        schemaversion=int(ce_type.rsplit(".v", 1)[1]),
        data=data,
    )
    headers = ((TYPE_HEADER, ce_type.encode()),) if hint else ()
    return Message(TOPIC, "k", envelope.to_bytes(), headers)


def consumer(engine: AsyncEngine) -> EventConsumer:
    return EventConsumer("probe", make_sessionmaker(engine), InProcessBus())


async def effects(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT what FROM probe.effects ORDER BY n"))]


async def parked(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT type FROM probe.parked"))]


def record(c: EventConsumer, model: type[Event]) -> None:
    @c.on(model)
    async def apply(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        await session.execute(
            text("INSERT INTO probe.effects (what) VALUES (:w)"),
            {"w": f"{envelope.type}:{payload.model_dump_json()}"},
        )


async def test_an_unknown_type_is_parked_and_applied_once_after_an_upgrade(
    engine: AsyncEngine,
) -> None:
    old = consumer(engine)
    message = raw("ila.probe.Future.v1", {"what": "news"})
    await old.handle_batch([message])
    assert await parked(engine) == ["ila.probe.Future.v1"]
    assert await effects(engine) == []

    # the upgrade: the type is known and handled now
    @event("probe.Future")
    class Future(Event):
        what: str

        def aggregate_id(self) -> str:
            return "k"

    new = consumer(engine)
    record(new, Future)
    assert await new.replay_parked() == 1
    assert await parked(engine) == []
    assert await new.replay_parked() == 0
    await new.handle_batch([message])  # delivered once more: the inbox knows it
    assert await effects(engine) == ['ila.probe.Future.v1:{"what":"news"}']


async def test_a_newer_version_than_the_consumer_knows_is_parked_not_dropped(
    engine: AsyncEngine,
) -> None:
    @event("probe.Thing")
    class Thing(Event):
        a: int

        def aggregate_id(self) -> str:
            return "k"

    c = consumer(engine)
    record(c, Thing)
    await c.handle_batch([raw("ila.probe.Thing.v2", {"a": 1, "b": 2})])
    assert await parked(engine) == ["ila.probe.Thing.v2"]
    assert await effects(engine) == []
    assert await c.replay_parked() == 0  # still unreadable: it stays parked
    assert await parked(engine) == ["ila.probe.Thing.v2"]


async def test_an_older_version_is_upcast_for_a_consumer_of_the_newer(
    engine: AsyncEngine,
) -> None:
    @event("probe.Amount", version=2)
    class AmountV2(Event):
        amount: int
        currency: str

        def aggregate_id(self) -> str:
            return "k"

    @upcaster("probe.Amount", 1)
    def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"amount": data["cents"], "currency": "EUR"}

    c = consumer(engine)
    record(c, AmountV2)
    await c.handle_batch([raw("ila.probe.Amount.v1", {"cents": 500})])
    assert await effects(engine) == ['ila.probe.Amount.v2:{"amount":500,"currency":"EUR"}']
    assert await parked(engine) == []


async def inbox(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT type FROM probe.inbox"))]


async def dead(engine: AsyncEngine) -> list[str | None]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT type FROM probe.dead_letters"))]


async def test_an_event_the_header_names_as_not_handled_here_is_not_read(
    engine: AsyncEngine,
) -> None:
    @event("probe.Noise")
    class Noise(Event):
        def aggregate_id(self) -> str:
            return "k"

    @event("probe.Signal")
    class Signal(Event):
        n: int

        def aggregate_id(self) -> str:
            return "k"

    c = consumer(engine)
    record(c, Signal)
    # the body is never parsed: were it read, it would be dead-lettered as unreadable
    skipped = Message(TOPIC, "k", b"{not an envelope", ((TYPE_HEADER, b"ila.probe.Noise.v1"),))
    await c.handle_batch([skipped, raw("ila.probe.Signal.v1", {"n": 1}, hint=True)])
    assert await effects(engine) == ['ila.probe.Signal.v1:{"n":1}']
    assert await inbox(engine) == ["ila.probe.Signal.v1"]
    assert await dead(engine) == []

    # without the header the same bytes are read, and dead-lettered
    await c.handle_batch([Message(TOPIC, "k", b"{not an envelope")])
    assert len(await dead(engine)) == 1


async def test_a_header_never_skips_what_is_handled_in_a_newer_form_or_unknown(
    engine: AsyncEngine,
) -> None:
    @event("probe.Amount")
    class AmountV1(Event):
        cents: int

        def aggregate_id(self) -> str:
            return "k"

    @event("probe.Amount", version=2)
    class AmountV2(Event):
        amount: int

        def aggregate_id(self) -> str:
            return "k"

    @upcaster("probe.Amount", 1)
    def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"amount": data["cents"]}

    c = consumer(engine)
    record(c, AmountV2)
    assert c.ignores("ila.probe.Amount.v1") is False
    await c.handle_batch(
        [
            raw("ila.probe.Amount.v1", {"cents": 5}, hint=True),
            raw("ila.probe.Later.v1", {"x": 1}, hint=True),
        ]
    )
    assert await effects(engine) == ['ila.probe.Amount.v2:{"amount":5}']
    assert await parked(engine) == ["ila.probe.Later.v1"]
