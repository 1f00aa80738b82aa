"""Support of the payments tests: payments with the accounts service and the ledger in one
process, on the in-process bus, so that the saga is real: accounts open wallets, the ledger
reserves and captures.

The catalogue's events (providers, courses) are handed to the payments consumer as the bus
would deliver them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import sepaxml  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy import text

from services.payments.store import read_models
from shared.bus import Message, topic_for
from shared.clock import Clock
from shared.events import Envelope, Event
from shared.events.catalogue import (
    CourseApproved,
    CourseUpdated,
    Payout,
    ProviderAccredited,
    ProviderRegistered,
    ProviderSuspended,
    SessionInfo,
)
from shared.service import ServiceRuntime
from shared.settings import Settings
from tests.integration.support.accounts import BODY
from tests.support import bearer, eventually

IBAN = "DE89370400440532013000"
BIC = "COBADEFFXXX"


class World:
    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, settings: Settings, clock: Clock
    ) -> None:
        self.app, self.c, self.settings, self.clock = app, client, settings, clock
        self.agency = bearer(settings, "agency", sub="pes-fr-desk", agency_id="pes-fr")
        self.admin = bearer(settings, "admin", sub="admin")
        self.auditor = bearer(settings, "auditor", sub="auditor")
        self.finance = bearer(settings, "finance", sub="finance-1")
        # another agency, managing its own accounts
        self.agency_b = bearer(settings, "agency", sub="pes-b-desk", agency_id="pes-b")
        self.providers: set[str] = set()

    @property
    def rt(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtimes["payments"]
        return runtime

    def provider(self, provider_id: str) -> dict[str, str]:
        return bearer(
            self.settings, "provider", sub=f"{provider_id}-staff", provider_id=provider_id
        )

    def learner(self, account_id: str) -> dict[str, str]:
        return bearer(self.settings, "learner", sub=account_id)

    # --- accounts and credit, through the real services ---

    async def account(
        self, credit: int = 0, *, agency: dict[str, str] | None = None, **overrides: Any
    ) -> str:
        """An open account, managed by ``agency`` (the World's agency by default)."""
        agency = agency or self.agency
        body = {**BODY, "national_id": "N" + uuid.uuid4().hex[:12], **overrides}
        r = await self.c.post("/v1/accounts", json=body, headers=agency)
        assert r.status_code == 201, r.text
        account_id: str = r.json()["account_id"]
        await eventually(lambda: self.balance(account_id), lambda b: b.get("status") == "open")

        async def known() -> bool:
            async with self.rt.sessions() as session:
                return await read_models.account(session, uuid.UUID(account_id)) is not None

        await eventually(known)
        if credit:
            await self.grant(account_id, credit, by=agency)
        return account_id

    async def account_status(self, account_id: str) -> str | None:
        """The account's status as payments' read model has it."""
        async with self.rt.sessions() as session:
            view = await read_models.account(session, uuid.UUID(account_id))
        return view.status if view else None

    async def grant(
        self, account_id: str, amount: int, *, by: dict[str, str] | None = None, **extra: Any
    ) -> None:
        r = await self.c.post(
            "/v1/ledger/grants",
            headers={**(by or self.agency), "Idempotency-Key": str(uuid.uuid4())},
            json={
                "account_id": account_id,
                "amount": amount,
                "funder_id": "state",
                "reason_code": "top_up",
                **extra,
            },
        )
        assert r.status_code == 201, r.text

    async def balance(self, account_id: str) -> dict[str, Any]:
        r = await self.c.get(f"/v1/ledger/accounts/{account_id}/balance", headers=self.auditor)
        return r.json() if r.status_code == 200 else {}  # type: ignore[no-any-return]

    # --- the catalogue, as its events reach the payments consumer ---

    async def deliver(self, *events: Event) -> None:
        """Hand catalogue events to the payments consumer as the bus would."""
        messages = [
            Message(
                topic_for(e.topic),
                e.aggregate_id(),
                Envelope.wrap(e, source=f"/ila/{e.topic}").to_bytes(),
            )
            for e in events
        ]
        await self.rt.consumer.handle_batch(messages)

    async def register_provider(
        self,
        provider_id: str,
        *,
        iban: str = IBAN,
        bic: str = BIC,
        qa_days: int = 365,
        agency_id: str = "pes-fr",
        verified: bool = True,
    ) -> None:
        """A registered, accredited provider; its bank details verified by finance with the
        bank unless ``verified=False`` (then they wait out the cooling-off)."""
        now = self.clock.now()
        await self.deliver(
            ProviderRegistered(
                provider_id=provider_id,
                agency_id=agency_id,
                name=f"Provider {provider_id}",
                country="FR",
                registration_number="REG-" + provider_id,
                qa_scheme="qualiopi",
                qa_valid_until=now.date() + timedelta(days=qa_days),
                payout=Payout(iban=iban, bic=bic, account_holder=f"Provider {provider_id}"),
                status="registered",
                registered_at=now,
            ),
            ProviderAccredited(
                provider_id=provider_id,
                reason_code="qa_audit_passed",
                qa_scheme="qualiopi",
                qa_valid_until=now.date() + timedelta(days=qa_days),
            ),
        )
        self.providers.add(provider_id)
        if verified:
            r = await self.c.post(
                f"/v1/payees/{provider_id}/verification",
                headers=self.finance,
                json={"iban": iban, "result": "match"},
            )
            assert r.status_code == 200, r.text

    async def provider_status(self, provider_id: str, status: str) -> None:
        if status == "suspended":
            await self.deliver(
                ProviderSuspended(provider_id=provider_id, reason_code="fraud_suspected")
            )
        else:
            await self.deliver(
                ProviderAccredited(
                    provider_id=provider_id,
                    reason_code="qa_audit_passed",
                    qa_scheme="qualiopi",
                    qa_valid_until=self.clock.now().date() + timedelta(days=365),
                )
            )

    def course_approved(
        self,
        provider_id: str,
        course_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        price: int,
        starts_in: int,
        days: int,
        seats: int,
        isced_field: str,
        version: int = 1,
        updated: bool = False,
        kind: str = "training",
    ) -> Event:
        start = datetime.combine(
            self.clock.now().date() + timedelta(days=starts_in), time(9), tzinfo=UTC
        )
        terms: dict[str, Any] = {
            "course_id": course_id,
            "version": version,
            "provider_id": provider_id,
            "kind": kind,
            "title": "Data analysis",
            "price": price,
            "currency": "EUR",
            "sessions": (
                SessionInfo(
                    session_id=session_id,
                    start=start,
                    end=start + timedelta(days=days),
                    seats=seats,
                ),
            ),
            "isced_field": isced_field,
            "eqf_level": 5,
            "tags": ("digital",),
            "mode": "online",
            "region": "FR-IDF",
            "workload_hours": 35,
        }
        if updated:
            return CourseUpdated(
                **terms, previous_version=version - 1, status="submitted", changed=("price",)
            )
        return CourseApproved(**terms, approved_by="agency:pes-fr", approved_at=start)

    async def course(
        self,
        provider_id: str,
        price: int = 100_000,
        *,
        starts_in: int = 30,
        days: int = 20,
        seats: int = 20,
        register: bool = True,
        isced_field: str = "0613",
        kind: str = "training",
    ) -> tuple[str, str]:
        """An approved course with one session, of a registered and accredited provider."""
        if register and provider_id not in self.providers:
            await self.register_provider(provider_id)
        course_id, session_id = uuid.uuid4(), uuid.uuid4()
        await self.deliver(
            self.course_approved(
                provider_id,
                course_id,
                session_id,
                price=price,
                starts_in=starts_in,
                days=days,
                seats=seats,
                isced_field=isced_field,
                kind=kind,
            )
        )
        return str(course_id), str(session_id)

    # --- payments ---

    async def propose(
        self,
        provider_id: str,
        account_id: str,
        course: tuple[str, str],
        guidance_plan_id: str | None = None,
        **headers: str,
    ) -> httpx.Response:
        body = {"account_id": account_id, "course_id": course[0], "session_id": course[1]}
        if guidance_plan_id is not None:
            body["guidance_plan_id"] = guidance_plan_id
        return await self.c.post(
            "/v1/enrolments", headers={**self.provider(provider_id), **headers}, json=body
        )

    async def enrolment(self, enrolment_id: str) -> dict[str, Any]:
        r = await self.c.get(f"/v1/enrolments/{enrolment_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def settled(self, enrolment_id: str, *statuses: str) -> dict[str, Any]:
        wanted = statuses or ("confirmed", "rejected", "awaiting_co_payment")
        return await eventually(
            lambda: self.enrolment(enrolment_id), lambda e: e["status"] in wanted
        )

    async def confirm(self, account_id: str, enrolment_id: str, **body: Any) -> httpx.Response:
        return await self.c.post(
            f"/v1/enrolments/{enrolment_id}/confirm", headers=self.learner(account_id), json=body
        )

    async def enrolled(
        self, provider_id: str, account_id: str, course: tuple[str, str], **body: Any
    ) -> dict[str, Any]:
        """Proposed and confirmed: the enrolment once the ledger answered."""
        r = await self.propose(provider_id, account_id, course)
        assert r.status_code == 202, r.text
        enrolment_id = r.json()["enrolment_id"]
        r = await self.confirm(account_id, enrolment_id, **body)
        assert r.status_code == 202, r.text
        return await self.settled(enrolment_id)

    async def enrolled_existing(self, account_id: str, enrolment_id: str) -> dict[str, Any]:
        r = await self.confirm(account_id, enrolment_id)
        assert r.status_code == 202, r.text
        return await self.settled(enrolment_id)

    async def claim(
        self,
        provider_id: str,
        enrolment_id: str,
        milestone: str = "completion",
        rate: int | None = 100,
        key: str | None = "",
        **evidence: Any,
    ) -> httpx.Response:
        """A claim with evidence dates inside the enrolment's session (when it exists) and an
        Idempotency-Key of its own (``key=None`` sends none)."""
        today = self.clock.now().date()
        started, completed = today - timedelta(days=1), today
        r = await self.c.get(f"/v1/enrolments/{enrolment_id}", headers=self.admin)
        if r.status_code == 200:
            starts_on = date.fromisoformat(r.json()["starts_on"])
            ends_on = date.fromisoformat(r.json()["ends_on"])
            started, completed = starts_on, min(ends_on, today)
        ev: dict[str, Any] = {"started_on": str(started), **evidence}
        if milestone == "completion":
            ev.setdefault("completion_rate", rate)
            ev.setdefault("completed_on", str(completed))
        body = {"enrolment_id": enrolment_id, "milestone": milestone, "evidence": ev}
        headers = self.provider(provider_id)
        if key is not None:
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        return await self.c.post("/v1/claims", headers=headers, json=body)

    def session_over(self, enrolment: dict[str, Any]) -> None:
        """Move the clock to the day after the enrolment's session ended."""
        after = date.fromisoformat(str(enrolment["ends_on"])) + timedelta(days=1)
        gap = after - self.clock.now().date()
        if gap > timedelta(0):
            self.clock.advance(gap)

    async def attest(self, claim_id: str) -> dict[str, Any]:
        """The learner of the claim attests it (so that, once captured, it is payable)."""
        claim = await self.claim_status(claim_id)
        r = await self.c.post(
            f"/v1/claims/{claim_id}/attest", headers=self.learner(claim["account_id"])
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def payable(self, claim_id: str) -> dict[str, Any]:
        """Captured and attested by the learner: a payout run takes it."""
        await self.captured(claim_id)
        return await self.attest(claim_id)

    async def release_claim(self, claim_id: str) -> dict[str, Any]:
        """Release a held claim under four eyes: the agency proposes, finance approves."""
        r = await self.c.post(f"/v1/claims/{claim_id}/release", headers=self.agency)
        assert r.status_code == 202, r.text
        await self.approve_as_finance(r.json()["approval_id"])
        return await self.claim_status(claim_id)

    async def claim_status(self, claim_id: str) -> dict[str, Any]:
        r = await self.c.get(f"/v1/claims/{claim_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def captured(self, claim_id: str) -> dict[str, Any]:
        return await eventually(
            lambda: self.claim_status(claim_id), lambda c: c["status"] == "captured"
        )

    async def payments_state(self) -> dict[str, list[Any]]:
        """Every row of claims, enrolments, reservations, payouts, approvals and the outbox
        of payments, and the ledger's outbox: to show that a refused request changed nothing."""
        state: dict[str, list[Any]] = {}
        async with self.rt.sessions() as session:
            for table, key in (
                ("claims", "claim_id"),
                ("enrolments", "enrolment_id"),
                ("reservations", "reservation_id"),
                ("payouts", "payout_id"),
                ("approvals", "approval_id"),
            ):
                rows = await session.execute(text(f"SELECT * FROM payments.{table} ORDER BY {key}"))
                state[table] = [tuple(r) for r in rows]
            rows = await session.execute(text("SELECT id, type FROM payments.outbox ORDER BY id"))
            state["outbox"] = [tuple(r) for r in rows]
        async with self.app.state.runtimes["ledger"].sessions() as session:
            rows = await session.execute(text("SELECT id, type FROM ledger.outbox ORDER BY id"))
            state["ledger.outbox"] = [tuple(r) for r in rows]
        return state

    # --- four eyes and payout runs ---

    async def approve_as_finance(
        self, approval_id: str, sub: str = "finance-1", expect: int = 200
    ) -> dict[str, Any]:
        """A second person (finance) approves a proposal: the action is carried out."""
        r = await self.c.post(
            f"/v1/payments/approvals/{approval_id}/approve",
            headers=bearer(self.settings, "finance", sub=sub),
        )
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def run_payouts(
        self, headers: dict[str, str] | None = None, key: str | None = None, **body: Any
    ) -> dict[str, Any]:
        """Assemble a payout run (it waits for release). Nothing to pay in the caller's
        scope is a 409 ``nothing_to_pay``: returned as a run without payouts."""
        r = await self.c.post(
            "/v1/payouts/runs",
            headers={**(headers or self.agency), "Idempotency-Key": key or uuid.uuid4().hex},
            json=body,
        )
        if r.status_code == 409 and r.json()["code"] == "nothing_to_pay":
            return {"status": None, "payouts": [], "skipped": [], "approval_id": None}
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def released_run(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A payout run assembled and released by finance (an empty run is returned as is)."""
        run = await self.run_payouts(headers)
        if run["approval_id"] is None:
            return run
        await self.approve_as_finance(run["approval_id"])
        r = await self.c.get(f"/v1/payouts/runs/{run['run_id']}", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def outbox_types(self, service: str = "payments") -> list[str]:
        async with self.app.state.runtimes[service].sessions() as session:
            rows = await session.execute(text(f'SELECT type FROM "{service}".outbox ORDER BY id'))
            return [r.type for r in rows]

    async def ledger_messages(self, account_id: str) -> list[Message]:
        """What the ledger published about this account, as the bus carried it."""
        async with self.app.state.runtimes["ledger"].sessions() as session:
            rows = await session.execute(
                text("SELECT topic, key, body FROM ledger.outbox WHERE key = :k ORDER BY id"),
                {"k": account_id},
            )
            return [Message(r.topic, r.key, bytes(r.body)) for r in rows]


def today() -> date:
    return Clock().now().date()


XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


async def captured_claims(
    world: World, provider: str, rates: list[int], register: bool = True
) -> list[str]:
    """Completion claims after the session's end, captured and attested by the learners."""
    course = await world.course(provider, price=100_000, starts_in=-1, register=register)
    enrolments = [
        await world.enrolled(provider, await world.account(credit=200_000), course) for _ in rates
    ]
    ids = []
    for e, rate in zip(enrolments, rates, strict=True):
        world.session_over(e)
        r = await world.claim(provider, e["enrolment_id"], rate=rate)
        await world.payable(r.json()["claim_id"])
        ids.append(r.json()["claim_id"])
    return ids


async def running(
    world: World, price: int = 100_000, credit: int = 500_000, over: bool = True, **kw: object
) -> tuple[str, dict[str, object]]:
    """A learner confirmed on a session that started yesterday; unless ``over=False``, the
    clock then moves past the session's end (a completion may be claimed)."""
    account = await world.account(credit=credit)
    course = await world.course("p1", price=price, starts_in=-1, **kw)  # type: ignore[arg-type]
    e = await world.enrolled("p1", account, course)
    assert e["status"] == "confirmed", e
    if over:
        world.session_over(e)
    return account, e


async def captured_claim(world: World, provider: str = "p1") -> tuple[str, dict[str, Any]]:
    """A completion claim after the session's end, captured, the learner not asked yet."""
    account = await world.account(credit=300_000)
    e = await world.enrolled(provider, account, await world.course(provider, starts_in=-1))
    world.session_over(e)
    r = await world.claim(provider, e["enrolment_id"], rate=100)
    assert r.status_code == 202 and r.json()["attestation"] == "pending", r.text
    return account, await world.captured(r.json()["claim_id"])
