"""What one use case of any service runs in: the caller's transaction, the instant it happens
at, the outbox its events go to, the service's rules and who and what caused it. Handlers
take a command and this context; routes and consumers build one per transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Event
from shared.outbox import EventContext, Outbox

ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class UseCaseContext(Generic[ConfigT]):
    session: AsyncSession
    outbox: Outbox
    config: ConfigT
    now: datetime
    events: EventContext

    @property
    def actor(self) -> str:
        return self.events.actor or ""

    async def emit(self, *events: Event, bulk: bool = False) -> None:
        """Stage ``events`` in the caller's transaction (``bulk``: they give way to the
        others, :class:`shared.outbox.Relay`)."""
        await self.outbox.add(self.session, events, self.events, bulk=bulk)
