"""Paid training leave for the payments tests: an employer registered in the ledger (and
known to payments), the leave fund with a budget, the employer's verified bank details, and
a learner in work enrolled on a course.

The leave fund is a funder of the ledger under the id the deployment configures
(``ILA_LEAVE_FUND_ID``): it is written in the ledger's funders table under that id, as an
operator registers the fund once for a deployment; its budget goes through the ledger's API
and four eyes."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from services.payments.deps import Components
from services.payments.store import leave as leave_store
from shared.service import ServiceRuntime, components_of
from tests.integration.support.payments import World
from tests.support import bearer, eventually

EMPLOYER_IBAN = "NL91ABNA0417164300"
EMPLOYER_BIC = "ABNANL2A"


class Leave:
    def __init__(self, world: World) -> None:
        self.w = world

    @property
    def ledger(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.w.app.state.runtimes["ledger"]
        return runtime

    @property
    def fund_id(self) -> str:
        return components_of(self.w.rt, Components).config.leave.fund_id

    def employer_token(self, funder_id: str) -> dict[str, str]:
        return bearer(self.w.settings, "funder", sub=f"hr-{funder_id[:8]}", funder_id=funder_id)

    async def employer(self, kind: str = "employer") -> str:
        """A funder registered through the ledger's API, once payments knows of it."""
        r = await self.w.c.post(
            "/v1/ledger/funders",
            json={"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}"},
            headers=self.w.admin,
        )
        assert r.status_code == 201, r.text
        funder_id: str = r.json()["funder_id"]

        async def known() -> str | None:
            async with self.w.rt.sessions() as session:
                return await leave_store.funder_kind(session, funder_id)

        await eventually(known)
        return funder_id

    async def fund(self, budget: int) -> None:
        """The leave fund (registered once) with ``budget`` for this year and the next (a
        compensation draws on the budget of the year it is claimed in, and the tests move
        the clock past the sessions' end)."""
        r = await self.w.c.post(
            "/v1/ledger/funders",
            json={"funder_id": self.fund_id, "kind": "sector_fund", "name": "Training leave fund"},
            headers={**self.w.admin, "Idempotency-Key": f"leave-fund-{self.fund_id}"},
        )
        assert r.status_code in (201, 409), r.text  # registered once
        year = self.w.clock.now().year
        await self.budget(budget, year)
        await self.budget(budget, year + 1)

    async def budget(self, amount: int, year: int | None = None) -> None:
        year = year or self.w.clock.now().year
        r = await self.w.c.put(
            f"/v1/ledger/funders/{self.fund_id}/budgets/{year}",
            json={"amount": amount},
            headers=self.w.admin,
        )
        assert r.status_code == 202, r.text
        approved = await self.w.c.post(
            f"/v1/ledger/approvals/{r.json()['approval_id']}/approve", headers=self.w.finance
        )
        assert approved.status_code == 200, approved.text

    async def drawn(self, year: int | None = None) -> int:
        """What the leave fund's budget of ``year`` paid out so far."""
        year = year or self.w.clock.now().year
        r = await self.w.c.get(f"/v1/ledger/funders/{self.fund_id}", headers=self.w.finance)
        assert r.status_code == 200, r.text
        budgets = {b["year"]: b for b in r.json()["budgets"]}
        return int(budgets[year]["drawn"]) if year in budgets else 0

    async def payee(self, funder_id: str, iban: str = EMPLOYER_IBAN) -> None:
        """The employer's bank details: proposed by the employer, approved and verified by
        finance."""
        r = await self.w.c.put(
            f"/v1/employers/{funder_id}/payee",
            json={"name": "Acme Employer SA", "iban": iban, "bic": EMPLOYER_BIC},
            headers=self.employer_token(funder_id),
        )
        assert r.status_code == 202, r.text
        await self.w.approve_as_finance(r.json()["approval_id"])
        r = await self.w.c.post(
            f"/v1/payees/employer:{funder_id}/verification",
            headers=self.w.finance,
            json={"iban": iban, "result": "match"},
        )
        assert r.status_code == 200, r.text

    async def enrolled(self, provider: str, **account: Any) -> dict[str, Any]:
        """A learner in work (unless ``account`` says otherwise) enrolled and confirmed on a
        course of 35 hours whose session starts in 30 days and lasts 20."""
        course = await self.w.course(provider, price=100_000, starts_in=30, days=20)
        fields = {"employment_status": "employed", **account}
        account_id = await self.w.account(credit=200_000, **fields)
        enrolment = await self.w.enrolled(provider, account_id, course)
        assert enrolment["status"] == "confirmed", enrolment
        return enrolment

    async def ask(
        self,
        enrolment: dict[str, Any],
        employer: str,
        hours: int = 35,
        days: int = 5,
        **body: Any,
    ) -> httpx.Response:
        """The learner asks leave for the session's first ``days`` days."""
        first = date.fromisoformat(enrolment["starts_on"])
        payload = {
            "employer_funder_id": employer,
            "hours": hours,
            "dates": [str(first + timedelta(days=n)) for n in range(days)],
            **body,
        }
        return await self.w.c.post(
            f"/v1/enrolments/{enrolment['enrolment_id']}/leave-requests",
            json=payload,
            headers=self.w.learner(enrolment["account_id"]),
        )

    async def decide(
        self, request_id: str, employer: str, move: str = "approve", **body: Any
    ) -> httpx.Response:
        body = body or ({"reason_code": "service_continuity"} if move == "refuse" else {})
        return await self.w.c.post(
            f"/v1/leave-requests/{request_id}/{move}",
            json=body,
            headers=self.employer_token(employer),
        )

    async def request(self, request_id: str, headers: dict[str, str] | None = None) -> Any:
        r = await self.w.c.get(f"/v1/leave-requests/{request_id}", headers=headers or self.w.admin)
        assert r.status_code == 200, r.text
        return r.json()

    async def completed(self, provider: str, enrolment: dict[str, Any]) -> None:
        """The session over, the provider's completion claim captured: the training
        completed."""
        self.w.session_over(enrolment)
        r = await self.w.claim(provider, enrolment["enrolment_id"])
        assert r.status_code == 202, r.text
        await self.w.captured(r.json()["claim_id"])
        await self.w.settled(enrolment["enrolment_id"], "completed")

    async def claim(self, request_id: str, employer: str) -> httpx.Response:
        return await self.w.c.post(
            f"/v1/leave-requests/{request_id}/compensation-claims",
            headers=self.employer_token(employer),
        )
