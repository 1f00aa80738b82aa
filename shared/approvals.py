"""Four eyes on money: one person proposes, a second person of an approving role decides.

Every action that creates credit in bulk, changes where money goes or releases money that
was held is not done by the request that asks for it: the request stores a *proposal*
(``<schema>.approvals``) and publishes ``ApprovalRequested``. A second person whose role
may approve (``finance``), and whose token subject differs from the proposer's, approves
it (the table keeps only pseudonyms: who proposed and who decided as the events name them,
:func:`shared.pseudonym.pseudonymous_actor`, and the proposer's subject keyed apart from its
role, :func:`shared.pseudonym.pseudonymous_subject`, to tell that a second person decides):
the action registered for the proposal runs in the same transaction as the approval, and
``ApprovalDecided`` is published with it. A refusal is an event too. A proposal that
was not decided before it expires can no longer be approved; its status reads ``expired``.

The mechanism is the same in every service that uses it (:class:`FourEyes`); each service
registers its actions and publishes the events on its own topic.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role
from shared.errors import ConflictError, ForbiddenError, NotFoundError
from shared.events.approvals import ApprovalDecided, ApprovalRequested
from shared.kernel_ddl import approvals_ddl  # the applied migrations import it from here
from shared.outbox import EventContext, Outbox
from shared.proposal import STATUSES, Proposal, Status
from shared.pseudonym import pseudonymous_subject

__all__ = ["STATUSES", "FourEyes", "Proposal", "Status", "approvals_ddl"]


Action = Callable[[AsyncSession, Proposal, Principal, EventContext], Awaitable[dict[str, Any]]]
"""Carries out an approved proposal in the approval's transaction; returns its result."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FourEyes:
    """The proposals of one service: propose, approve or refuse, list."""

    def __init__(
        self,
        service: str,
        outbox: Outbox,
        requested: type[ApprovalRequested],
        decided: type[ApprovalDecided],
        *,
        ttl: timedelta = timedelta(hours=72),
        approvers: tuple[Role, ...] = ("finance",),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.schema = f'"{service}"'
        self.outbox = outbox
        self.requested = requested
        self.decided = decided
        self.ttl = ttl
        self.approvers = approvers
        self.clock = clock
        self.actions: dict[str, Action] = {}
        # what refusing a proposal of a kind undoes (e.g. a run's claims payable again)
        self.refusals: dict[str, Action] = {}

    def actor(self, principal: Principal) -> str:
        """``principal`` as proposals and events name it: a pseudonym for a person."""
        return self.outbox.actor(principal.actor)

    def person(self, principal: Principal) -> str:
        """Who ``principal`` is whatever their role, as the table keeps it."""
        if self.outbox.actor_pepper is None:
            return principal.sub
        return pseudonymous_subject(principal.sub, self.outbox.actor_pepper)

    def action(self, name: str) -> Callable[[Action], Action]:
        """Register what approving a proposal of kind ``name`` does."""

        def register(fn: Action) -> Action:
            self.actions[name] = fn
            return fn

        return register

    def on_refusal(self, name: str) -> Callable[[Action], Action]:
        """Register what refusing a proposal of kind ``name`` undoes (in the same
        transaction as the refusal)."""

        def register(fn: Action) -> Action:
            self.refusals[name] = fn
            return fn

        return register

    async def propose(
        self,
        session: AsyncSession,
        principal: Principal,
        ctx: EventContext,
        *,
        action: str,
        subject: str,
        payload: dict[str, Any],
        summary: dict[str, Any],
        agency_id: str | None = None,
        provider_id: str | None = None,
    ) -> Proposal:
        """Store a proposal and publish ``ApprovalRequested``; nothing else happens yet."""
        if action not in self.actions:
            raise RuntimeError(f"no action {action!r} registered")
        if principal.role in self.approvers:
            raise ForbiddenError(
                f"role {principal.role!r} approves proposals and never makes them",
                code="approver_cannot_propose",
            )
        now = self.clock()
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"approval:{self.schema}:{action}:{subject}"},
        )
        open_ = await session.scalar(
            text(
                f"SELECT approval_id FROM {self.schema}.approvals WHERE action = :a "
                "AND subject = :s AND status = 'pending' AND expires_at > :now LIMIT 1"
            ),
            {"a": action, "s": subject, "now": now},
        )
        if open_ is not None:
            raise ConflictError(
                f"a proposal for this {action.replace('_', ' ')} already waits for approval",
                code="proposal_pending",
                extra={"approval_id": str(open_)},
            )
        proposal = Proposal(
            approval_id=uuid.uuid4(),
            action=action,
            subject=subject,
            payload=payload,
            summary=summary,
            agency_id=agency_id,
            provider_id=provider_id,
            proposed_by=self.actor(principal),
            proposer_sub=self.person(principal),
            proposed_at=now,
            expires_at=now + self.ttl,
            status="pending",
            decided_by=None,
            decided_at=None,
            reason_code=None,
            result=None,
        )
        await session.execute(
            text(
                f"INSERT INTO {self.schema}.approvals (approval_id, action, subject, payload, "
                "summary, agency_id, provider_id, proposed_by, proposer_sub, proposed_at, "
                "expires_at) VALUES (:id, :action, :subject, CAST(:payload AS jsonb), "
                "CAST(:summary AS jsonb), :agency, :provider, :by, :sub, :at, :expires)"
            ),
            {
                "id": proposal.approval_id,
                "action": action,
                "subject": subject,
                "payload": json.dumps(payload, default=str),
                "summary": json.dumps(summary, default=str),
                "agency": agency_id,
                "provider": provider_id,
                "by": proposal.proposed_by,
                "sub": proposal.proposer_sub,
                "at": now,
                "expires": proposal.expires_at,
            },
        )
        await self.outbox.add(
            session,
            [
                self.requested(
                    approval_id=proposal.approval_id,
                    action=action,
                    subject=subject,
                    proposed_by=proposal.proposed_by,
                    proposed_at=now,
                    expires_at=proposal.expires_at,
                    summary=summary,
                )
            ],
            ctx,
        )
        return proposal

    async def decide(
        self,
        session: AsyncSession,
        approval_id: uuid.UUID,
        principal: Principal,
        ctx: EventContext,
        *,
        approve: bool,
        reason_code: str | None = None,
    ) -> Proposal:
        """Approve (and carry out) or refuse a pending proposal, as a second person."""
        if principal.role not in self.approvers:
            raise ForbiddenError(
                f"only {', '.join(self.approvers)} may approve or refuse proposals",
                code="not_an_approver",
            )
        proposal = await self.get(session, approval_id, lock=True)
        if proposal is None:
            raise NotFoundError(f"no proposal {approval_id}", code="proposal_not_found")
        now = self.clock()
        status = proposal.status_at(now)
        if status == "expired":
            raise ConflictError(
                "the proposal expired before it was decided; propose it again",
                code="proposal_expired",
            )
        if status != "pending":
            raise ConflictError(f"the proposal was already {status}", code="proposal_decided")
        # (a proposal stored before subjects were keyed holds the raw subject)
        if proposal.proposer_sub in (principal.sub, self.person(principal)):
            raise ForbiddenError(
                "the person who proposed an action may not also approve it",
                code="same_person",
            )
        result = None
        if approve:
            result = await self.actions[proposal.action](session, proposal, principal, ctx)
        elif proposal.action in self.refusals:
            result = await self.refusals[proposal.action](session, proposal, principal, ctx)
        decided = replace(
            proposal,
            status="approved" if approve else "refused",
            decided_by=self.actor(principal),
            decided_at=now,
            reason_code=reason_code,
            result=result,
        )
        await session.execute(
            text(
                f"UPDATE {self.schema}.approvals SET status = :status, decided_by = :by, "
                "decided_at = :at, reason_code = :reason, result = CAST(:result AS jsonb) "
                "WHERE approval_id = :id"
            ),
            {
                "id": approval_id,
                "status": decided.status,
                "by": decided.decided_by,
                "at": now,
                "reason": reason_code,
                "result": json.dumps(result, default=str) if result is not None else None,
            },
        )
        await self.outbox.add(
            session,
            [
                self.decided(
                    approval_id=approval_id,
                    action=proposal.action,
                    subject=proposal.subject,
                    decision="approved" if approve else "refused",
                    proposed_by=proposal.proposed_by,
                    decided_by=decided.decided_by,
                    decided_at=now,
                    reason_code=reason_code,
                )
            ],
            ctx,
        )
        return decided

    async def get(
        self, session: AsyncSession, approval_id: uuid.UUID, *, lock: bool = False
    ) -> Proposal | None:
        row = (
            (
                await session.execute(
                    text(
                        f"SELECT * FROM {self.schema}.approvals WHERE approval_id = :id"
                        + (" FOR UPDATE" if lock else "")
                    ),
                    {"id": approval_id},
                )
            )
            .mappings()
            .one_or_none()
        )
        return Proposal(**row) if row is not None else None

    async def pending_for(
        self, session: AsyncSession, action: str, subject: str
    ) -> Proposal | None:
        """The open proposal of ``action`` on ``subject``, if one waits."""
        row = (
            (
                await session.execute(
                    text(
                        f"SELECT * FROM {self.schema}.approvals WHERE action = :a AND "
                        "subject = :s AND status = 'pending' AND expires_at > :now LIMIT 1"
                    ),
                    {"a": action, "s": subject, "now": self.clock()},
                )
            )
            .mappings()
            .one_or_none()
        )
        return Proposal(**row) if row is not None else None

    async def page(
        self,
        session: AsyncSession,
        *,
        status: Status | None = None,
        action: str | None = None,
        agency_id: str | None = None,
        provider_id: str | None = None,
        limit: int = 100,
        after: uuid.UUID | None = None,
    ) -> list[Proposal]:
        """Proposals oldest first, filtered; ``expired`` means pending past its expiry."""
        where = ["TRUE"]
        params: dict[str, Any] = {"limit": limit, "now": self.clock()}
        if status == "pending":
            where.append("status = 'pending' AND expires_at > :now")
        elif status == "expired":
            where.append("status = 'pending' AND expires_at <= :now")
        elif status is not None:
            where.append("status = :status")
            params["status"] = status
        for column, value in (
            ("action", action),
            ("agency_id", agency_id),
            ("provider_id", provider_id),
        ):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        if after is not None:
            where.append(
                f"(proposed_at, approval_id) > (SELECT proposed_at, approval_id FROM "
                f"{self.schema}.approvals WHERE approval_id = :after)"
            )
            params["after"] = after
        rows = (
            (
                await session.execute(
                    text(
                        f"SELECT * FROM {self.schema}.approvals WHERE {' AND '.join(where)} "
                        "ORDER BY proposed_at, approval_id LIMIT :limit"
                    ),
                    params,
                )
            )
            .mappings()
            .all()
        )
        return [Proposal(**r) for r in rows]
