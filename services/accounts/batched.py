"""The other services' events accounts applies a fetched batch of at once
(``EventConsumer.on_batch``): the ledger's lot moves (an allocation of N accounts is N
grants), payments' proposals (kept, and told to the learner) and the answers to them, and
the trainings of the statistics.

A few multi-row statements leave what the same events applied one at a time leave
(:func:`services.accounts.messages.facts.apply_lot_event`, ``store.answered``, the
statistics' handlers of :mod:`services.accounts.consumers`); each row's events are folded in
their order before anything is written:

- a lot: its moves add up, so the moves before the batch's first grant of the lot (they move
  a lot kept already, or nothing), the grant (kept only when the lot is not), then the moves
  after it: at most three statements, each naming a lot once;
- an enrolment's training: a confirmation records it unless recorded, a cancellation with
  nothing kept by the provider forgets it; so the batch forgets those it cancels, then
  records the first confirmation after the last cancellation (or the first, with none);
- a proposal: what the proposals and answers of one enrolment do to its row, in their
  order, with consecutive ones folded (proposals told again in a row leave what the last
  leaves; answers in a row, what one leaves): the k-th step of every enrolment in one
  statement per kind, k = 1, 2, ... (an enrolment's first proposal and then its answer:
  two rounds);
- a proposal's message: every proposal of the batch told at once
  (:meth:`~services.accounts.messages.Messenger.tell_many`: a fact once, as one at a time).

The reminders and expiry notices are not touched: the scan queues them from the lots and
proposals (:mod:`services.accounts.messages.scans`), once per fact whatever the batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.accounts.messages import Messenger, Tell
from services.accounts.messages.facts import (
    ANSWERS,
    LOT_MOVES,
    add_move,
    lot_moves,
    proposal_of,
    waiting,
)
from services.accounts.store import messages as lots_store
from services.accounts.store import statistics
from shared.events import Envelope
from shared.events.ledger import CreditsGranted
from shared.events.payments import EnrolmentCancelled, EnrolmentConfirmed, EnrolmentProposed

BATCHED = (*LOT_MOVES, *ANSWERS, EnrolmentProposed)
"""The event types :func:`apply_many` takes."""


@dataclass
class LotPlan:
    """A batch's lot events folded: moves before each lot's first grant, the grants, moves
    after."""

    before: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)
    grants: dict[uuid.UUID, lots_store.NewLot] = field(default_factory=dict)
    after: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)

    def take(self, e: Any) -> None:
        if isinstance(e, CreditsGranted):
            if e.expires_at is not None and e.lot_id not in self.grants:
                lot = (e.lot_id, e.account_id, e.funder_id, e.amount, e.expires_at)
                self.grants[e.lot_id] = lot
            return
        for lot_id, r, h in lot_moves(e):
            add_move(self.after if lot_id in self.grants else self.before, lot_id, r, h)

    async def apply(self, session: AsyncSession) -> None:
        await lots_store.shift_lots(session, self.before)
        await lots_store.add_lots(session, list(self.grants.values()))
        await lots_store.shift_lots(session, self.after)


@dataclass
class TrainingPlan:
    """A batch's confirmations and cancellations folded per enrolment."""

    forget: set[uuid.UUID] = field(default_factory=set)
    record: dict[uuid.UUID, statistics.Training] = field(default_factory=dict)

    def take(self, envelope: Envelope, e: Any) -> None:
        if isinstance(e, EnrolmentConfirmed):
            training = (e.enrolment_id, e.account_id, e.isced_field, envelope.time)
            self.record.setdefault(e.enrolment_id, training)
        elif isinstance(e, EnrolmentCancelled) and e.provider_share == 0:
            self.forget.add(e.enrolment_id)
            self.record.pop(e.enrolment_id, None)

    async def apply(self, session: AsyncSession) -> None:
        await statistics.forget_trainings(session, sorted(self.forget))
        await statistics.record_trainings(session, list(self.record.values()))


@dataclass
class ProposalPlan:
    """A batch's proposals and answers, per enrolment, in order: a proposal to keep, or
    None for an answer (consecutive ones folded); and the messages to tell."""

    steps: dict[uuid.UUID, list[lots_store.Proposal | None]] = field(default_factory=dict)
    tells: list[Tell] = field(default_factory=list)

    def propose(self, e: EnrolmentProposed, messenger: Messenger) -> None:
        steps = self.steps.setdefault(e.enrolment_id, [])
        if steps and steps[-1] is not None:
            steps[-1] = proposal_of(e)
        else:
            steps.append(proposal_of(e))
        self.tells.append(waiting(e, messenger))

    def answer(self, enrolment_id: uuid.UUID) -> None:
        steps = self.steps.setdefault(enrolment_id, [])
        if not steps or steps[-1] is not None:
            steps.append(None)

    async def apply(self, session: AsyncSession, messenger: Messenger) -> None:
        rounds = max((len(s) for s in self.steps.values()), default=0)
        for k in range(rounds):
            now = [(eid, s[k]) for eid, s in self.steps.items() if len(s) > k]
            await lots_store.put_proposals(session, [p for _, p in now if p is not None])
            await lots_store.answered_all(session, [eid for eid, p in now if p is None])
        await messenger.tell_many(session, self.tells)


async def apply_many(
    session: AsyncSession, items: Sequence[tuple[Envelope, Any]], messenger: Messenger
) -> None:
    """Apply consecutive events of :data:`BATCHED` types (each in the order given)."""
    lots, trainings, proposals = LotPlan(), TrainingPlan(), ProposalPlan()
    for envelope, e in items:
        if isinstance(e, EnrolmentProposed):
            proposals.propose(e, messenger)
        elif isinstance(e, ANSWERS):
            proposals.answer(e.enrolment_id)
            trainings.take(envelope, e)
        else:
            lots.take(e)
    await lots.apply(session)
    await proposals.apply(session, messenger)
    await trainings.apply(session)
