"""Dead letters an operator can act on, the same in every service and in every mode.

A message the consumer gave up on (its handler kept failing, or its envelope could not be
read) is stored whole in the service's ``dead_letters`` table, with its error, in the
transaction that recorded the failure (:class:`shared.inbox.EventConsumer`); over Kafka it
also goes to the group's dead-letter topic. An operator lists them (``ila dlq list``,
``GET /v1/{service}/dead-letters``), reads one, fixes the cause and *replays* one or all:
the inbox forgets that the event was dead-lettered and lets it through once, in the same
transaction that closes the dead letter. A replay that fails again keeps the dead letter
open with the new error; a second replay of one already replayed changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import Message
from shared.db import transaction
from shared.errors import ConflictError, NotFoundError
from shared.events import Envelope

if TYPE_CHECKING:
    from shared.inbox import EventConsumer

Status = Literal["open", "replayed"]
Outcome = Literal["applied", "failed"]

_COLUMNS = (
    "dead_letter_id, event_id, type, topic, key, error, failures, status, dead_at, "
    "replayed_at, replayed_by"
)


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: uuid.UUID
    event_id: uuid.UUID | None
    type: str | None
    topic: str
    key: str
    error: str
    failures: int
    status: Status
    dead_at: datetime
    replayed_at: datetime | None
    replayed_by: str | None
    body: bytes | None = None

    def public(self, *, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dead_letter_id": str(self.dead_letter_id),
            "event_id": str(self.event_id) if self.event_id else None,
            "type": self.type,
            "topic": self.topic,
            "key": self.key,
            "error": self.error,
            "failures": self.failures,
            "status": self.status,
            "dead_at": self.dead_at.isoformat(),
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "replayed_by": self.replayed_by,
        }
        if with_body and self.body is not None:
            try:
                out["event"] = Envelope.from_bytes(self.body).model_dump(mode="json")
            except (ValidationError, ValueError):
                out["event"] = None
        return out


@dataclass(frozen=True)
class Replayed:
    dead_letter_id: uuid.UUID
    outcome: Outcome
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "dead_letter_id": str(self.dead_letter_id),
            "outcome": self.outcome,
            "error": self.error,
        }


def _identity(message: Message) -> tuple[uuid.UUID | None, str | None]:
    try:
        envelope = Envelope.from_bytes(message.value)
    except (ValidationError, ValueError):
        return None, None
    return envelope.id, envelope.type


async def record(session: AsyncSession, service: str, message: Message, error: str) -> uuid.UUID:
    """Store ``message`` as a dead letter of ``service`` (in the caller's transaction)."""
    event_id, ce_type = _identity(message)
    dead_letter_id = uuid.uuid4()
    await session.execute(
        text(
            f'INSERT INTO "{service}".dead_letters '
            "(dead_letter_id, event_id, type, topic, key, body, error) "
            "VALUES (:id, :event_id, :type, :topic, :key, :body, :error)"
        ),
        {
            "id": dead_letter_id,
            "event_id": event_id,
            "type": ce_type,
            "topic": message.topic,
            "key": message.key,
            "body": message.value,
            "error": error[:2000],
        },
    )
    return dead_letter_id


def _row(row: Any, *, with_body: bool = False) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=row.dead_letter_id,
        event_id=row.event_id,
        type=row.type,
        topic=row.topic,
        key=row.key,
        error=row.error,
        failures=row.failures,
        status=row.status,
        dead_at=row.dead_at,
        replayed_at=row.replayed_at,
        replayed_by=row.replayed_by,
        body=bytes(row.body) if with_body else None,
    )


async def page(
    session: AsyncSession,
    service: str,
    *,
    status: Status | None = "open",
    after: uuid.UUID | None = None,
    limit: int = 100,
) -> list[DeadLetter]:
    """Dead letters oldest first (``status=None``: every one), after ``after``'s row."""
    where = ["(CAST(:status AS text) IS NULL OR status = CAST(:status AS text))"]
    if after is not None:
        where.append(
            f'(dead_at, dead_letter_id) > (SELECT dead_at, dead_letter_id FROM "{service}"'
            ".dead_letters WHERE dead_letter_id = CAST(:after AS uuid))"
        )
    rows = (
        await session.execute(
            text(
                f'SELECT {_COLUMNS} FROM "{service}".dead_letters WHERE {" AND ".join(where)} '
                "ORDER BY dead_at, dead_letter_id LIMIT :limit"
            ),
            {"status": status, "after": after, "limit": limit},
        )
    ).all()
    return [_row(r) for r in rows]


async def get(
    session: AsyncSession, service: str, dead_letter_id: uuid.UUID, *, lock: bool = False
) -> DeadLetter:
    row = (
        await session.execute(
            text(
                f'SELECT {_COLUMNS}, body FROM "{service}".dead_letters '
                "WHERE dead_letter_id = :id" + (" FOR UPDATE" if lock else "")
            ),
            {"id": dead_letter_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no dead letter {dead_letter_id}", code="dead_letter_not_found")
    return _row(row, with_body=True)


async def _replay_in(
    session: AsyncSession, consumer: EventConsumer, dead: DeadLetter, actor: str
) -> Replayed:
    service = consumer.service
    assert dead.body is not None
    if dead.event_id is not None:
        # the inbox forgets the failure, so that the event is let through (once: applying
        # it records it again)
        await session.execute(
            text(
                f'DELETE FROM "{service}".inbox '
                "WHERE event_id = :id AND outcome = 'dead_lettered'"
            ),
            {"id": dead.event_id},
        )
    error = await consumer.handle_one(session, Message(dead.topic, dead.key, dead.body))
    if error is None:
        await session.execute(
            text(
                f"UPDATE \"{service}\".dead_letters SET status = 'replayed', "
                "replayed_at = now(), replayed_by = :actor WHERE dead_letter_id = :id"
            ),
            {"id": dead.dead_letter_id, "actor": actor},
        )
        return Replayed(dead.dead_letter_id, "applied")
    await session.execute(
        text(
            f'UPDATE "{service}".dead_letters SET error = :error, failures = failures + 1 '
            "WHERE dead_letter_id = :id"
        ),
        {"id": dead.dead_letter_id, "error": error[:2000]},
    )
    return Replayed(dead.dead_letter_id, "failed", error[:2000])


async def replay(consumer: EventConsumer, dead_letter_id: uuid.UUID, actor: str) -> Replayed:
    """Apply one open dead letter again, in one transaction (409 once it was replayed)."""
    async with transaction(consumer.sessions) as session:
        dead = await get(session, consumer.service, dead_letter_id, lock=True)
        if dead.status != "open":
            raise ConflictError(
                f"dead letter {dead_letter_id} was replayed at {dead.replayed_at}",
                code="dead_letter_replayed",
            )
        return await _replay_in(session, consumer, dead, actor)


async def replay_all(consumer: EventConsumer, actor: str, limit: int = 1000) -> list[Replayed]:
    """Apply every open dead letter again, oldest first, each in its own transaction (one
    that fails again stays open and does not stop the others)."""
    sessions: async_sessionmaker[AsyncSession] = consumer.sessions
    async with sessions() as session:
        ids = [d.dead_letter_id for d in await page(session, consumer.service, limit=limit)]
    results = []
    for dead_letter_id in ids:
        async with transaction(sessions) as session:
            dead = await get(session, consumer.service, dead_letter_id, lock=True)
            if dead.status == "open":
                results.append(await _replay_in(session, consumer, dead, actor))
    return results


__all__ = ["DeadLetter", "Replayed", "get", "page", "record", "replay", "replay_all"]
