"""Group commit of the ledger's HTTP grants (:mod:`shared.group_commit`): the grants that
arrive together are decided together.

Callers (the HTTP grant route) ``submit`` a command with its context and, optionally, its
``Idempotency-Key`` claim, a read-only ``check`` (the caller's scope) and ``respond`` (the
reply an outcome calls for). In each batch's transaction, after the keys are claimed:

1. each ``check`` runs (a :class:`GroupedCheck` together with the others of its class, one
   query for all of them); one that refuses answers its caller alone;
2. ``wallets.execute_many`` decides every other command (heads locked in account order, one
   statement per table); a refused command answers its caller alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.commands import Command
from services.ledger.handlers import Ledger
from services.ledger.handlers.wallets import Order, Outcome, execute_many
from shared.db import UnitOfWork
from shared.errors import DomainError
from shared.group_commit import GroupCommit
from shared.idempotency import Claim, Reply
from shared.outbox import EventContext


class GroupedCheck(ABC):
    """A read-only check of one request that runs together with the others of its class in
    a batch, so that a batch of grants asks the database once, not once per grant."""

    @classmethod
    @abstractmethod
    async def run_all(
        cls, session: AsyncSession, checks: Sequence[GroupedCheck]
    ) -> list[DomainError | None]:
        """Each check's refusal (None: it passes), in the order given."""


Check = Callable[[AsyncSession], Awaitable[None]] | GroupedCheck
Respond = Callable[[Outcome], Reply]


@dataclass(frozen=True)
class _Work:
    command: Command
    ctx: EventContext
    check: Check | None
    idempotency_key: str | None


def _outcome_reply(outcome: Outcome) -> Reply:
    return Reply(200, outcome, {})


class GroupCommitter(GroupCommit[_Work, Outcome]):
    def __init__(
        self, uow: UnitOfWork, ledger: Ledger, *, size: int = 256, window: float = 0.002
    ) -> None:
        super().__init__(uow, service="ledger", size=size, window=window)
        self.ledger = ledger

    async def submit(  # type: ignore[override]  # the grant route's arguments
        self,
        command: Command,
        ctx: EventContext,
        *,
        claim: Claim | None = None,
        check: Check | None = None,
        respond: Respond = _outcome_reply,
    ) -> Reply:
        """The reply to ``command`` once its batch committed (or the error that refused it)."""
        work = _Work(command, ctx, check, claim.key if claim else None)
        return await super().submit(work, respond, claim=claim)

    async def decide(
        self, session: AsyncSession, works: Sequence[_Work]
    ) -> list[Outcome | DomainError]:
        refusals: list[DomainError | None] = [None] * len(works)
        grouped: dict[type[GroupedCheck], list[int]] = {}
        for i, work in enumerate(works):
            check = work.check
            if check is None:
                continue
            if isinstance(check, GroupedCheck):
                grouped.setdefault(type(check), []).append(i)
                continue
            try:
                await check(session)
            except DomainError as refused:
                refusals[i] = refused
        for kind, slots in grouped.items():
            checks = [c for i in slots if isinstance(c := works[i].check, GroupedCheck)]
            for i, refusal in zip(slots, await kind.run_all(session, checks), strict=True):
                refusals[i] = refusal
        todo = [i for i, refusal in enumerate(refusals) if refusal is None]
        outcomes = await execute_many(
            [Order(works[i].command, works[i].ctx, works[i].idempotency_key) for i in todo],
            self.ledger.context(session, EventContext.new("ledger")),  # each order has its own
        )
        decided = dict(zip(todo, outcomes, strict=True))
        return [decided[i] if refusal is None else refusal for i, refusal in enumerate(refusals)]


__all__ = ["Check", "GroupCommitter", "GroupedCheck", "Respond"]
