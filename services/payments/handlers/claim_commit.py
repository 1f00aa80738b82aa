"""Group commit of claim submissions (:mod:`shared.group_commit`): the claims that arrive
together are decided in one transaction (``claims.submit_many``), their keys claimed and
their replies stored two statements a batch. At most one claim per enrolment is in a batch
(its lane): the next claim of an enrolment is decided in the next batch, seeing the first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.claims import Claim
from services.payments.handlers import Payments
from services.payments.handlers.claims import ClaimOrder, submit_many
from shared.db import UnitOfWork
from shared.errors import DomainError
from shared.group_commit import GroupCommit
from shared.outbox import EventContext


class ClaimCommitter(GroupCommit[ClaimOrder, Claim]):
    def __init__(
        self, uow: UnitOfWork, payments: Payments, *, size: int = 256, window: float = 0.002
    ) -> None:
        super().__init__(uow, service="payments", size=size, window=window)
        self.payments = payments

    def lane(self, work: ClaimOrder) -> uuid.UUID:
        return work.command.enrolment_id

    async def decide(
        self, session: AsyncSession, works: Sequence[ClaimOrder]
    ) -> list[Claim | DomainError]:
        # each order has its own cause; the batch's context gives the instant and the rules
        ctx = self.payments.context(session, EventContext.new("payments"))
        return await submit_many(works, ctx)


__all__ = ["ClaimCommitter"]
