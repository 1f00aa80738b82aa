"""Group commit in payments (:mod:`shared.group_commit`): the claims, and the learners'
confirmations, that arrive together are decided in one transaction a batch
(``claims.submit_many``, ``enrolments.confirm_many``), their keys claimed and their replies
stored two statements a batch. At most one request per enrolment is in a batch (its lane):
the next one of an enrolment is decided in the next batch, seeing what the first decided."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.domain.claims import Claim
from services.payments.domain.enrolments import Enrolment
from services.payments.handlers import Context, Payments
from services.payments.handlers.claims import ClaimOrder, submit_many
from services.payments.handlers.enrolments import ConfirmOrder, confirm_many
from shared.db import UnitOfWork
from shared.errors import DomainError
from shared.group_commit import GroupCommit
from shared.outbox import EventContext

W = TypeVar("W")
O = TypeVar("O")  # noqa: E741


class _InPayments(GroupCommit[W, O]):
    def __init__(
        self, uow: UnitOfWork, payments: Payments, *, size: int = 256, window: float = 0.002
    ) -> None:
        super().__init__(uow, service="payments", size=size, window=window)
        self.payments = payments

    def context(self, session: AsyncSession) -> Context:
        """A batch's context: its instant and the rules (each order has its own cause)."""
        return self.payments.context(session, EventContext.new("payments"))


class ClaimCommitter(_InPayments[ClaimOrder, Claim]):
    def lane(self, work: ClaimOrder) -> uuid.UUID:
        return work.command.enrolment_id

    async def decide(
        self, session: AsyncSession, works: Sequence[ClaimOrder]
    ) -> list[Claim | DomainError]:
        return await submit_many(works, self.context(session))


class ConfirmCommitter(_InPayments[ConfirmOrder, Enrolment]):
    def lane(self, work: ConfirmOrder) -> uuid.UUID:
        return work.enrolment_id

    async def decide(
        self, session: AsyncSession, works: Sequence[ConfirmOrder]
    ) -> list[Enrolment | DomainError]:
        return await confirm_many(works, self.context(session))


__all__ = ["ClaimCommitter", "ConfirmCommitter"]
