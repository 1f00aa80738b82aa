"""Who and what caused the events a use case writes: the correlation across services, the
event that caused them and the actor (kept in each event's envelope by the outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.events import Envelope
from shared.logs import correlation_id


@dataclass(frozen=True)
class EventContext:
    """Who and what caused the events being written (tracing across services)."""

    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    actor: str | None = None

    @classmethod
    def new(cls, actor: str | None = None) -> EventContext:
        return cls(correlation_id=uuid.uuid4(), actor=actor)

    @classmethod
    def for_request(cls, actor: str) -> EventContext:
        """The context of the HTTP request being handled: its correlation id (the
        ``X-Correlation-ID`` header, or the one the middleware generated) and the caller."""
        cid = correlation_id.get()
        if not cid:
            return cls.new(actor)
        try:
            correlation = uuid.UUID(cid)
        except ValueError:  # a caller's own id format: map it to a stable UUID
            correlation = uuid.uuid5(uuid.NAMESPACE_URL, f"correlation:{cid}")
        return cls(correlation_id=correlation, actor=actor)

    @classmethod
    def caused_by(cls, envelope: Envelope, actor: str | None = None) -> EventContext:
        return cls(
            correlation_id=envelope.correlationid,
            causation_id=envelope.id,
            actor=actor or envelope.actor,
        )
