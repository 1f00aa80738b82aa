"""Events become e-mails, exactly one per fact: the accounts service tells learners (a
proposal waiting, a reminder before its deadline, credit expiring, a credential issued, the
acknowledgement of a contest), the catalogue tells providers (a payout sent, a claim
contested). Each triggering event is delivered twice (the same envelope, and the same fact
in a new envelope, as a replay would), each job runs twice, and a real SMTP sink
(:mod:`ila.mail_sink`, aiosmtpd on 127.0.0.1) receives exactly one message per fact."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from ila.mail_sink import MailSink, Received
from ila.registry import definition
from services.accounts.messages import scans
from shared import mail
from shared.bus import Message, topic_for
from shared.events import Envelope, Event
from shared.events.catalogue import CredentialIssued
from shared.events.ledger import CourseRef, CreditsGranted, CreditsReserved, LotAmount
from shared.events.payments import (
    ClaimContested,
    EnrolmentProposed,
    EnrolmentRejected,
    PayoutSent,
)
from shared.service import ServiceRuntime
from shared.settings import Settings
from tests.integration.support.accounts import account_body
from tests.integration.support.catalogue import provider_body
from tests.support import bearer, free_port, running_app, settings_for

pytestmark = pytest.mark.postgres

LEARNER = "learner.messages@example.org"
PROVIDER = "office@provider.example.org"


@dataclass
class World:
    app: FastAPI
    c: httpx.AsyncClient
    settings: Settings
    sink: MailSink
    agency: dict[str, str]

    @property
    def accounts(self) -> ServiceRuntime:
        rt: ServiceRuntime = self.app.state.runtimes["accounts"]
        return rt

    @property
    def catalogue(self) -> ServiceRuntime:
        rt: ServiceRuntime = self.app.state.runtimes["catalogue"]
        return rt

    def now(self) -> datetime:
        return self.accounts.components.clock.now()  # type: ignore[attr-defined,no-any-return]

    async def open_account(self, email: str | None = LEARNER) -> str:
        body = account_body()
        body["personal"] = {**body["personal"], "email": email}
        if email is None:
            del body["personal"]["email"]
        r = await self.c.post("/v1/accounts", json=body, headers=self.agency)
        assert r.status_code == 201, r.text
        return str(r.json()["account_id"])

    async def register_provider(self, email: str | None = PROVIDER) -> str:
        extra = {"contact_email": email} if email else {}
        r = await self.c.post("/v1/providers", json=provider_body(**extra), headers=self.agency)
        assert r.status_code == 201, r.text
        return str(r.json()["provider_id"])

    async def deliver_twice(self, rt: ServiceRuntime, event: Event) -> None:
        """The same envelope twice (the inbox's guard), then the same fact in a new envelope
        (the message table's guard)."""
        message = _message(event)
        await rt.consumer.handle_batch([message])
        await rt.consumer.handle_batch([message])
        await rt.consumer.handle_batch([_message(event)])

    async def scan_twice(self, at: datetime) -> None:
        for _ in range(2):
            async with self.accounts.uow() as session:
                await scans.scan(session, self.accounts.components.messenger, at)  # type: ignore[attr-defined]

    async def send(self, at: datetime | None = None) -> int:
        """Both senders, twice."""
        smtp = mail.SmtpConfig.from_settings(self.settings)
        assert smtp is not None
        sent = 0
        for _ in range(2):
            for rt in (self.accounts, self.catalogue):
                sent += await mail.send_due(rt.sessions, rt.name, smtp, now=at or self.now())
        return sent

    def received(self, to: str) -> list[Received]:
        return [m for m in self.sink.received() if to in m.recipients]

    def kinds(self, to: str) -> Counter[str]:
        return Counter(m.header("X-ILA-Kind") for m in self.received(to))

    async def rows(self, schema: str, sql: str = "", **params: Any) -> list[Any]:
        async with self.accounts.engine.connect() as conn:
            result = await conn.execute(
                text(f"SELECT * FROM {schema}.outgoing_mail {sql} ORDER BY created_at"), params
            )
            return list(result.mappings())


def _message(event: Event) -> Message:
    envelope = Envelope.wrap(event, source=f"/ila/{event.topic}")
    return Message(topic_for(event.topic), event.aggregate_id(), envelope.to_bytes())


@asynccontextmanager
async def world(db_url: str, smtp_port: int | None = None) -> AsyncIterator[World]:
    with MailSink() as sink:
        settings = settings_for(
            db_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port or sink.port,
            mail_retry_base_seconds=60,
        )
        definitions = [definition("accounts"), definition("catalogue")]
        async with running_app(definitions, settings, run_jobs=False) as (app, c):
            agency = bearer(settings, "agency", sub="desk", agency_id="pes-fr")
            yield World(app, c, settings, sink, agency)


def proposal(account_id: str, provider_id: str, expires_at: datetime) -> EnrolmentProposed:
    return EnrolmentProposed(
        enrolment_id=uuid.uuid4(),
        account_id=uuid.UUID(account_id),
        provider_id=provider_id,
        course_id=uuid.uuid4(),
        course_version=1,
        session_id=uuid.uuid4(),
        starts_on=date(2031, 3, 1),
        ends_on=date(2031, 3, 31),
        price=120_000,
        co_payment=5_000,
        expires_at=expires_at,
    )


async def test_each_fact_gives_exactly_one_message(db_url: str) -> None:
    async with world(db_url) as w:
        account = await w.open_account()
        provider = await w.register_provider()
        now = w.now()
        deadline = now + timedelta(days=7)
        waiting = proposal(account, provider, deadline)
        lot = uuid.uuid4()
        claim = uuid.uuid4()

        # (1) a proposal waits for consent
        await w.deliver_twice(w.accounts, waiting)
        # (3) a lot expiring in 60 days, 300.00 of its 500.00 held by a reservation
        await w.deliver_twice(
            w.accounts,
            CreditsGranted(
                account_id=uuid.UUID(account),
                occurred_at=now,
                lot_id=lot,
                amount=50_000,
                funder_id="region-idf",
                reason_code="top_up",
                kind="top_up",
                expires_at=now + timedelta(days=60),
            ),
        )
        reserved = CreditsReserved(
            account_id=uuid.UUID(account),
            occurred_at=now,
            reservation_id=uuid.uuid4(),
            enrolment_id=waiting.enrolment_id,
            course=CourseRef(course_id=waiting.course_id),
            requested=30_000,
            amount=30_000,
            up_to=False,
            allocations=(LotAmount(lot_id=lot, amount=30_000),),
            expires_at=now + timedelta(days=200),
        )
        await w.accounts.consumer.handle_batch([_message(reserved)] * 2)
        # (4) a credential
        await w.deliver_twice(
            w.accounts,
            CredentialIssued(
                credential_id=uuid.uuid4(),
                account_id=uuid.UUID(account),
                enrolment_id=waiting.enrolment_id,
                course_id=waiting.course_id,
                course_version=1,
                provider_id=provider,
                issuer="did:web:ila.test",
                issued_at=now,
            ),
        )
        # (5) a contest: the learner's acknowledgement and the provider's notice
        contested = ClaimContested(
            claim_id=claim,
            enrolment_id=waiting.enrolment_id,
            provider_id=provider,
            milestone="completion",
            reason_code="did_not_attend",
            account_id=uuid.UUID(account),
        )
        await w.deliver_twice(w.accounts, contested)
        await w.deliver_twice(w.catalogue, contested)
        # (6) a payout sent, told in two parts
        payout, run = uuid.uuid4(), uuid.uuid4()
        for part in (1, 2):
            await w.deliver_twice(
                w.catalogue,
                PayoutSent(
                    payout_id=payout,
                    provider_id=provider,
                    run_id=run,
                    amount=123_450,
                    currency="EUR",
                    claim_ids=(uuid.uuid4(),),
                    part=part,
                    parts=2,
                ),
            )
        # the daily scan, twice today (no reminder yet: the deadline is 7 days away) ...
        await w.scan_twice(now)
        assert await w.send() == 6
        # (2) ... and twice two days before the deadline
        await w.scan_twice(deadline - timedelta(hours=40))
        assert await w.send() == 1
        await w.scan_twice(deadline - timedelta(hours=1))
        assert await w.send() == 0

        assert w.kinds(LEARNER) == {
            "proposal_waiting": 1,
            "consent_reminder": 1,
            "credit_expiring": 1,
            "credential_issued": 1,
            "claim_contested": 1,
        }
        assert w.kinds(PROVIDER) == {"claim_contested": 1, "payout_sent": 1}
        assert len(w.sink.received()) == 7
        by_kind = {m.header("X-ILA-Kind"): m for m in w.received(LEARNER)}
        deadline_text = deadline.strftime("%Y-%m-%d %H:%M UTC")
        assert deadline_text in by_kind["proposal_waiting"].body
        assert "50.00 EUR" in by_kind["proposal_waiting"].body  # the co-payment
        assert deadline_text in by_kind["consent_reminder"].body
        # what would expire: the credit no reservation holds
        assert "200.00 EUR" in by_kind["credit_expiring"].body
        assert "region-idf" in by_kind["credit_expiring"].body
        assert by_kind["proposal_waiting"].header("Content-Language") == "en"
        payout_mail = w.received(PROVIDER)
        assert any("1234.50 EUR" in m.body for m in payout_mail)
        # nothing of the learner reached the provider, nor the reverse
        assert all(m.recipients == (PROVIDER,) for m in payout_mail)

        # a dead-letter replay, a late duplicate: nothing new
        await w.deliver_twice(w.accounts, waiting)
        await w.deliver_twice(w.catalogue, contested)
        assert await w.send() == 0
        assert len(w.sink.received()) == 7
        assert {r["status"] for r in await w.rows("accounts")} == {"sent"}


async def test_the_learner_chooses_reminders_and_language(db_url: str) -> None:
    async with world(db_url) as w:
        account = await w.open_account()
        other = await w.open_account(email="other.learner@example.org")
        provider = await w.register_provider()
        learner = bearer(w.settings, "learner", sub=account)
        path = f"/v1/accounts/{account}/message-preferences"

        r = await w.c.get(path, headers=learner)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "language": "en",
            "consent_reminder": True,
            "credit_expiry": True,
            "credential_issued": True,
        }
        chosen = {
            "language": "fr",
            "consent_reminder": False,
            "credit_expiry": True,
            "credential_issued": True,
        }
        r = await w.c.put(path, json=chosen, headers=learner)
        assert r.status_code == 200, r.text
        assert (await w.c.get(path, headers=learner)).json() == chosen
        # only the learner themself; bad input changes nothing
        for who in (bearer(w.settings, "learner", sub=other), w.agency):
            assert (await w.c.get(path, headers=who)).status_code == 403
            assert (await w.c.put(path, json=chosen, headers=who)).status_code == 403
        for bad in ({**chosen, "language": "xx"}, {**chosen, "sms": True}, {"language": 1}):
            r = await w.c.put(path, json=bad, headers=learner)
            assert r.status_code == 422, r.text
        assert (await w.c.get(path, headers=learner)).json() == chosen
        # the other learner reads German
        other_path = f"/v1/accounts/{other}/message-preferences"
        r = await w.c.put(
            other_path,
            json={**chosen, "language": "de", "consent_reminder": True},
            headers=bearer(w.settings, "learner", sub=other),
        )
        assert r.status_code == 200, r.text

        now = w.now()
        deadline = now + timedelta(days=3)
        await w.deliver_twice(w.accounts, proposal(account, provider, deadline))
        # the other learner keeps reminders on, but refuses the proposal first
        refused = proposal(other, provider, deadline)
        await w.deliver_twice(w.accounts, refused)
        await w.deliver_twice(
            w.accounts,
            EnrolmentRejected(
                enrolment_id=refused.enrolment_id,
                account_id=refused.account_id,
                provider_id=provider,
                course_id=refused.course_id,
                session_id=refused.session_id,
                status="refused",
                reason="learner_refused",
            ),
        )
        await w.scan_twice(deadline - timedelta(hours=2))
        await w.send()
        assert w.kinds(LEARNER) == {"proposal_waiting": 1}  # no reminder: turned off
        assert w.kinds("other.learner@example.org") == {"proposal_waiting": 1}  # answered
        [waiting] = w.received(LEARNER)
        assert waiting.header("Content-Language") == "fr"
        # written in French, subject and body, from the shared catalogues
        assert waiting.subject == "Une proposition de formation attend votre accord"
        assert "Confirmez-la ou refusez-la avant le" in waiting.body
        assert "A training provider" not in waiting.body
        [other_waiting] = w.received("other.learner@example.org")
        assert other_waiting.header("Content-Language") == "de"
        assert other_waiting.subject == "Ein Weiterbildungsvorschlag wartet auf Ihre Zustimmung"
        assert "Bestätigen oder lehnen Sie ihn vor dem" in other_waiting.body


async def test_a_failed_send_is_retried_and_sent_once(db_url: str) -> None:
    port = free_port()  # nothing listens there yet
    async with world(db_url, smtp_port=port) as w:
        account = await w.open_account()
        provider = await w.register_provider()
        await w.deliver_twice(w.accounts, proposal(account, provider, w.now() + timedelta(days=9)))
        now = w.now()
        assert await w.send(now) == 0
        [row] = await w.rows("accounts")
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert row["last_error"] and row["next_attempt_at"] > now

        with MailSink(port=port) as server:
            assert await w.send(now) == 0  # not due yet: it waits its backoff
            later = now + timedelta(minutes=5)
            assert await w.send(later) == 1
            assert await w.send(later + timedelta(hours=1)) == 0
            assert [m.header("X-ILA-Kind") for m in server.received()] == ["proposal_waiting"]
        [row] = await w.rows("accounts")
        assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)


async def test_erasure_removes_the_messages(db_url: str) -> None:
    async with world(db_url) as w:
        account = await w.open_account()
        provider = await w.register_provider()
        first = proposal(account, provider, w.now() + timedelta(days=9))
        await w.deliver_twice(w.accounts, first)
        assert await w.send() == 1
        # a second message still waiting when the person is erased
        await w.deliver_twice(w.accounts, proposal(account, provider, w.now() + timedelta(days=9)))
        r = await w.c.delete(f"/v1/accounts/{account}/personal-data", headers=w.agency)
        assert r.status_code == 204
        rows = await w.rows("accounts", "WHERE person = :p", p=account)
        assert sorted(r["status"] for r in rows) == ["erased", "sent"]
        for row in rows:
            assert row["recipient"] is None and row["subject"] is None and row["body"] is None
        assert await w.send() == 0
        # a fact told after the erasure has nobody to go to
        await w.deliver_twice(w.accounts, proposal(account, provider, w.now() + timedelta(days=9)))
        assert len(await w.rows("accounts")) == 2
        assert len(w.sink.received()) == 1
