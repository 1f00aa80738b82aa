"""Funders through the ledger's HTTP API, for tests: register one, have its budget approved,
grant from it with its own token, have a co-funding rule adopted; what payments asks of the
ledger (reserve, capture), and what each funder's lots paid by the audit stream alone."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from services.ledger import consumers
from shared.bus import Message
from shared.bus.inprocess import InProcessBus
from shared.events import Envelope
from shared.events.base import Event
from shared.events.ledger import CourseRef
from shared.events.payments import CaptureRequested, EnrolmentRequested
from shared.inbox import EventConsumer
from tests.integration.support.ledger import THIS_YEAR, Api
from tests.support import bearer


async def funder(api: Api, kind: str = "employer", **extra: object) -> str:
    body = {"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}", **extra}
    r = await api.c.post("/v1/ledger/funders", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    funder_id: str = r.json()["funder_id"]
    return funder_id


def token(api: Api, funder_id: str) -> dict[str, str]:
    return bearer(api.settings, "funder", sub=f"staff-{funder_id[:8]}", funder_id=funder_id)


async def budget(api: Api, funder_id: str, year: int, amount: int) -> dict[str, Any]:
    """Propose the budget as the admin and have finance approve it."""
    r = await api.c.put(
        f"/v1/ledger/funders/{funder_id}/budgets/{year}",
        json={"amount": amount},
        headers=api.admin,
    )
    assert r.status_code == 202, r.text
    assert r.json()["subject"] == f"budget:{funder_id}:{year}"
    approved = await api.approve(r.json()["approval_id"])
    assert approved.status_code == 200, approved.text
    return approved.json()  # type: ignore[no-any-return]


async def grant(
    api: Api,
    funder_id: str,
    account_id: str,
    amount: int,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> httpx.Response:
    return await api.c.post(
        f"/v1/ledger/funders/{funder_id}/grants",
        headers={**(headers or token(api, funder_id)), "Idempotency-Key": str(uuid.uuid4())},
        json={"account_id": account_id, "amount": amount, **extra},
    )


async def cofunding_rule(
    api: Api, funder_id: str, headers: dict[str, str] | None = None, **terms: object
) -> str:
    """Propose a co-funding rule (as the funder, by default) and have finance approve it."""
    r = await api.c.post(
        f"/v1/ledger/funders/{funder_id}/cofunding-rules",
        json={"year": THIS_YEAR, **terms},
        headers=headers or token(api, funder_id),
    )
    assert r.status_code == 202, r.text
    assert r.json()["subject"] == f"cofunding:{funder_id}:{r.json()['rule_id']}"
    approved = await api.approve(r.json()["approval_id"])
    assert approved.status_code == 200, approved.text
    rule_id: str = r.json()["rule_id"]
    return rule_id


class Payments:
    """What the payments service asks of the ledger, delivered to the ledger's consumer."""

    def __init__(self, api: Api) -> None:
        self.consumer = EventConsumer("ledger", api.rt.sessions, InProcessBus())
        consumers.register(self.consumer, api.ledger)

    async def send(self, event: Event, account: uuid.UUID) -> None:
        wrapped = Envelope.wrap(event, source="/ila/payments")
        await self.consumer.handle_batch(
            [Message("ila.payments", str(account), wrapped.to_bytes())]
        )

    async def enrol(
        self, account: str, course: CourseRef, amount: int, provider: str, up_to: bool = False
    ) -> dict[str, Any]:
        ids = {"enrolment_id": uuid.uuid4(), "account_id": uuid.UUID(account)}
        reservation = uuid.uuid4()
        await self.send(
            EnrolmentRequested(
                **ids,
                reservation_id=reservation,
                provider_id=provider,
                course=course,
                course_version=1,
                amount=amount,
                up_to=up_to,
            ),
            ids["account_id"],
        )
        return {**ids, "reservation_id": reservation, "provider_id": provider}

    async def capture(self, enrolment: dict[str, Any], amount: int, final: bool = True) -> None:
        await self.send(
            CaptureRequested(**enrolment, claim_id=uuid.uuid4(), amount=amount, final=final),
            enrolment["account_id"],
        )


async def audit_stream(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await api.c.get(
            "/v1/ledger/audit/events", params={"after": after, "limit": 500}, headers=api.auditor
        )
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if r.json()["next"] is None:
            return items
        after = int(r.json()["next"])


def paid_by_funder(stream: list[dict[str, Any]]) -> dict[str, int]:
    """What each funder's lots paid, folded from the audit stream alone: the parts captures
    took from its lots, less what capture reversals gave back to them."""
    funder_of: dict[str, str] = {}
    paid: dict[str, int] = {}
    for item in stream:
        kind, data = item["type"].split(".")[2], item["data"]
        if kind == "CreditsGranted":
            funder_of[data["lot_id"]] = data["funder_id"]
        elif kind == "ReservationCaptured" or (
            kind == "EntryReversed" and data["target_event"] == "ledger.ReservationCaptured"
        ):
            sign = 1 if kind == "ReservationCaptured" else -1
            for part in data["allocations"]:
                funder = funder_of[part["lot_id"]]
                paid[funder] = paid.get(funder, 0) + sign * part["amount"]
    return paid
