"""Four eyes, the shared mechanism, through the approvals API of a real service: who may
approve, who may not, expiry, refusal, one open proposal per subject, and the events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.main import definition
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import ConflictError, ForbiddenError
from shared.outbox import EventContext
from shared.pseudonym import pseudonymous_actor
from shared.service import ServiceRuntime
from tests.support import bearer, running_app, settings_for

pytestmark = pytest.mark.postgres


class Fixture:
    def __init__(self, rt: ServiceRuntime, client: httpx.AsyncClient) -> None:
        self.rt, self.c = rt, client
        assert rt.four_eyes is not None
        self.fe: FourEyes = rt.four_eyes
        self.done: list[dict[str, Any]] = []
        s = rt.settings
        self.finance = bearer(s, "finance", sub="fin-1")
        self.finance_2 = bearer(s, "finance", sub="fin-2")
        self.admin = bearer(s, "admin", sub="adm-1")
        self.auditor = bearer(s, "auditor", sub="aud-1")
        self.agency = bearer(s, "agency", sub="desk-1", agency_id="pes-a")
        self.other_agency = bearer(s, "agency", sub="desk-2", agency_id="pes-b")

        @self.fe.action("test_release")
        async def release(
            session: AsyncSession, proposal: Proposal, principal: Principal, ctx: EventContext
        ) -> dict[str, Any]:
            self.done.append(proposal.payload)
            return {"released": proposal.payload["amount"]}

    async def propose(self, sub: str = "adm-1", role: str = "admin", **kw: Any) -> Proposal:
        principal = Principal(sub=sub, role=role, agency_id=kw.pop("agency_id", None))  # type: ignore[arg-type]
        async with self.rt.uow() as session:
            return await self.fe.propose(
                session,
                principal,
                EventContext.new(principal.actor),
                action="test_release",
                subject=kw.get("subject", f"thing:{uuid.uuid4()}"),
                payload={"amount": 1234},
                summary={"amount": 1234},
                agency_id=principal.agency_id,
            )

    async def events(self) -> list[str]:
        async with self.rt.sessions() as session:
            rows = await session.execute(
                text("SELECT type FROM ledger.outbox WHERE type LIKE '%Approval%' ORDER BY id")
            )
            return [r[0] for r in rows]


@pytest.fixture
async def fx(db_url: str) -> AsyncIterator[Fixture]:
    async with running_app([definition()], settings_for(db_url), run_jobs=False) as (app, c):
        yield Fixture(app.state.runtimes["ledger"], c)


async def test_a_second_person_of_the_approving_role_carries_the_action_out(fx: Fixture) -> None:
    p = await fx.propose()
    r = await fx.c.get("/v1/ledger/approvals?status=pending", headers=fx.finance)
    assert r.status_code == 200, r.text
    assert [i["approval_id"] for i in r.json()["items"]] == [str(p.approval_id)]
    assert fx.done == []
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["result"] == {"released": 1234}
    # who proposed and who decided, as the events name them: keyed pseudonyms
    pepper = fx.rt.settings.actor_pepper
    assert r.json()["decided_by"] == pseudonymous_actor("finance:fin-1", pepper)
    assert r.json()["proposed_by"] == pseudonymous_actor("admin:adm-1", pepper)
    assert fx.done == [{"amount": 1234}]
    # decided once: a second approval (even by another approver) does nothing
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance_2)
    assert (r.status_code, r.json()["code"]) == (409, "proposal_decided")
    assert fx.done == [{"amount": 1234}]
    assert await fx.events() == [
        "ila.ledger.ApprovalRequested.v1",
        "ila.ledger.ApprovalDecided.v1",
    ]


@pytest.mark.parametrize("who", ["admin", "auditor", "agency"])
async def test_roles_that_do_not_approve_cannot(fx: Fixture, who: str) -> None:
    p = await fx.propose(sub="someone-else")
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=getattr(fx, who))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert fx.done == []


async def test_the_proposer_cannot_approve_even_with_an_approvers_token(fx: Fixture) -> None:
    p = await fx.propose(sub="fin-1")  # the same person holds a finance token too
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance)
    assert (r.status_code, r.json()["code"]) == (403, "same_person")
    assert fx.done == []
    r = await fx.c.get(f"/v1/ledger/approvals/{p.approval_id}", headers=fx.finance)
    assert r.json()["status"] == "pending"


async def test_the_table_keeps_no_token_subject_yet_knows_the_proposer(fx: Fixture) -> None:
    p = await fx.propose(sub="fin-1")
    async with fx.rt.sessions() as session:
        row = (
            await session.execute(
                text("SELECT * FROM ledger.approvals WHERE approval_id = :id"),
                {"id": p.approval_id},
            )
        ).one()
    assert not any("fin-1" in str(v) for v in row)
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance)
    assert (r.status_code, r.json()["code"]) == (403, "same_person")


async def test_a_proposal_stored_with_the_raw_subject_still_refuses_its_proposer(
    fx: Fixture,
) -> None:
    # (as proposals were stored before subjects were keyed)
    p = await fx.propose(sub="fin-1")
    async with fx.rt.uow() as session:
        await session.execute(
            text("UPDATE ledger.approvals SET proposer_sub = 'fin-1' WHERE approval_id = :id"),
            {"id": p.approval_id},
        )
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance)
    assert (r.status_code, r.json()["code"]) == (403, "same_person")
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance_2)
    assert r.status_code == 200, r.text


async def test_an_approver_cannot_propose(fx: Fixture) -> None:
    with pytest.raises(ForbiddenError):
        await fx.propose(sub="fin-1", role="finance")


async def test_an_expired_proposal_cannot_be_approved(fx: Fixture) -> None:
    p = await fx.propose()
    async with fx.rt.uow() as session:
        await session.execute(
            text(
                "UPDATE ledger.approvals SET expires_at = now() - interval '1 second' "
                "WHERE approval_id = :id"
            ),
            {"id": p.approval_id},
        )
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance)
    assert (r.status_code, r.json()["code"]) == (409, "proposal_expired")
    assert fx.done == []
    r = await fx.c.get("/v1/ledger/approvals?status=expired", headers=fx.finance)
    assert [i["approval_id"] for i in r.json()["items"]] == [str(p.approval_id)]
    r = await fx.c.get("/v1/ledger/approvals?status=pending", headers=fx.finance)
    assert r.json()["items"] == []


async def test_a_refusal_is_recorded_and_ends_the_proposal(fx: Fixture) -> None:
    p = await fx.propose()
    r = await fx.c.post(
        f"/v1/ledger/approvals/{p.approval_id}/refuse",
        json={"reason_code": "amount_not_justified"},
        headers=fx.finance,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason_code"]) == ("refused", "amount_not_justified")
    r = await fx.c.post(f"/v1/ledger/approvals/{p.approval_id}/approve", headers=fx.finance_2)
    assert (r.status_code, r.json()["code"]) == (409, "proposal_decided")
    assert fx.done == []
    r = await fx.c.post(
        f"/v1/ledger/approvals/{p.approval_id}/refuse",
        json={"reason_code": "free text is not a code"},
        headers=fx.finance,
    )
    assert r.status_code == 422


async def test_one_open_proposal_per_subject(fx: Fixture) -> None:
    first = await fx.propose(subject="thing:1")
    with pytest.raises(ConflictError) as err:
        await fx.propose(subject="thing:1", sub="adm-2")
    assert err.value.extra["approval_id"] == str(first.approval_id)
    await fx.c.post(
        f"/v1/ledger/approvals/{first.approval_id}/refuse",
        json={"reason_code": "duplicate"},
        headers=fx.finance,
    )
    await fx.propose(subject="thing:1", sub="adm-2")  # decided: a new proposal may follow


async def test_agencies_see_their_own_proposals_only_and_others_not_at_all(fx: Fixture) -> None:
    mine = await fx.propose(sub="desk-1", role="agency", agency_id="pes-a")
    r = await fx.c.get("/v1/ledger/approvals", headers=fx.agency)
    assert [i["approval_id"] for i in r.json()["items"]] == [str(mine.approval_id)]
    r = await fx.c.get("/v1/ledger/approvals", headers=fx.other_agency)
    assert r.json()["items"] == []
    missing = await fx.c.get(f"/v1/ledger/approvals/{uuid.uuid4()}", headers=fx.other_agency)
    hidden = await fx.c.get(f"/v1/ledger/approvals/{mine.approval_id}", headers=fx.other_agency)
    assert missing.status_code == hidden.status_code == 404
    assert missing.json()["code"] == hidden.json()["code"] == "proposal_not_found"
    r = await fx.c.get("/v1/ledger/approvals", headers=bearer(fx.rt.settings, "learner"))
    assert r.status_code == 403


async def test_the_ttl_comes_from_settings(fx: Fixture) -> None:
    p = await fx.propose()
    assert p.expires_at - p.proposed_at == timedelta(hours=fx.rt.settings.approval_ttl_hours)
