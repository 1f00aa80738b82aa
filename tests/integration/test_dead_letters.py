"""Dead letters are stored durably with their error (in-process as over Kafka) and an
operator replays them after a fix: the inbox lets a replayed event through exactly once.
On the real PostgreSQL, through the inbox consumer every service uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import dead_letters
from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.db import make_engine, make_sessionmaker
from shared.errors import ConflictError, NotFoundError
from shared.events import Envelope, Event, event
from shared.events import base as events_base
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
        await conn.execute(text("CREATE TABLE probe.broken (yes boolean)"))
        await conn.execute(text("INSERT INTO probe.broken VALUES (true)"))
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    before = dict(events_base._REGISTRY)
    yield
    events_base._REGISTRY.clear()
    events_base._REGISTRY.update(before)


def message(data: dict[str, Any], event_id: uuid.UUID | None = None) -> Message:
    eid = event_id or uuid.uuid4()
    envelope = Envelope(
        id=eid,
        source="/ila/probe",
        type="ila.probe.Fragile.v1",
        subject="k",
        time=datetime.now(UTC),
        correlationid=eid,
        data=data,
    )
    return Message(TOPIC, "k", envelope.to_bytes())


@pytest.fixture(autouse=True)
def fragile() -> type[Event]:
    @event("probe.Fragile")
    class Fragile(Event):
        n: int

        def aggregate_id(self) -> str:
            return "k"

    return Fragile


def fragile_consumer(engine: AsyncEngine) -> EventConsumer:
    """A consumer whose handler fails while ``probe.broken`` says so (the cause an operator
    fixes), and records its effect otherwise."""
    Fragile = events_base.model_for("ila.probe.Fragile.v1")
    assert Fragile is not None
    c = EventConsumer("probe", make_sessionmaker(engine), InProcessBus(), retry_delay=0)

    @c.on(Fragile)
    async def apply(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        if await session.scalar(text("SELECT yes FROM probe.broken")):
            raise ValueError(f"cannot apply {payload.n} yet")
        await session.execute(
            text("INSERT INTO probe.effects (what) VALUES (:w)"), {"w": str(payload.n)}
        )

    return c


async def effects(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT what FROM probe.effects ORDER BY n"))]


async def fix(engine: AsyncEngine, broken: bool = False) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE probe.broken SET yes = :b"), {"b": broken})


async def open_letters(c: EventConsumer) -> list[dead_letters.DeadLetter]:
    async with c.sessions() as session:
        return await dead_letters.page(session, "probe")


async def test_a_failing_event_is_stored_with_its_error_and_replayed_once_after_a_fix(
    engine: AsyncEngine,
) -> None:
    c = fragile_consumer(engine)
    m = message({"n": 1})
    await c.handle_batch([m])
    [dead] = await open_letters(c)
    assert dead.type == "ila.probe.Fragile.v1"
    assert "ValueError: cannot apply 1 yet" in dead.error
    assert dead.status == "open"

    # a new consumer (a restart) still sees it: it is in the database, not in memory
    c = fragile_consumer(engine)
    await fix(engine)
    await c.handle_batch([m])  # a re-delivery alone is still recognised and ignored
    assert await effects(engine) == []

    result = await dead_letters.replay(c, dead.dead_letter_id, "admin:op")
    assert result.outcome == "applied"
    assert await effects(engine) == ["1"]
    assert await open_letters(c) == []
    async with c.sessions() as session:
        replayed = await dead_letters.get(session, "probe", dead.dead_letter_id)
    assert (replayed.status, replayed.replayed_by) == ("replayed", "admin:op")

    # once only: a second replay is refused, a re-delivery is a duplicate
    with pytest.raises(ConflictError):
        await dead_letters.replay(c, dead.dead_letter_id, "admin:op")
    await c.handle_batch([m])
    assert await effects(engine) == ["1"]


async def test_a_replay_that_fails_again_keeps_the_letter_open_with_the_new_error(
    engine: AsyncEngine,
) -> None:
    c = fragile_consumer(engine)
    await c.handle_batch([message({"n": 7})])
    [dead] = await open_letters(c)
    result = await dead_letters.replay(c, dead.dead_letter_id, "admin:op")
    assert result.outcome == "failed"
    assert result.error is not None and "cannot apply 7" in result.error
    [still] = await open_letters(c)
    assert (still.dead_letter_id, still.failures) == (dead.dead_letter_id, 2)
    assert await effects(engine) == []

    await fix(engine)
    assert (await dead_letters.replay(c, dead.dead_letter_id, "admin:op")).outcome == "applied"
    assert await effects(engine) == ["7"]


async def test_replay_all_applies_every_open_letter_and_an_unknown_id_is_not_found(
    engine: AsyncEngine,
) -> None:
    c = fragile_consumer(engine)
    await c.handle_batch([message({"n": 1}), message({"n": 2})])
    unreadable = Message(TOPIC, "k", b"not an envelope")
    await c.handle_batch([unreadable])
    assert len(await open_letters(c)) == 3
    await fix(engine)
    results = await dead_letters.replay_all(c, "admin:op")
    assert sorted(r.outcome for r in results) == ["applied", "applied", "failed"]
    assert sorted(await effects(engine)) == ["1", "2"]
    [left] = await open_letters(c)
    assert left.event_id is None and "unreadable envelope" in left.error
    with pytest.raises(NotFoundError):
        await dead_letters.replay(c, uuid.uuid4(), "admin:op")
