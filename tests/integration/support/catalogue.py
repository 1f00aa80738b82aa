"""Builders and a small client for the catalogue tests (real PostgreSQL, in-process bus),
and the steps of a credential's life: a completion certified, a credential issued, verified."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from ila.registry import definition
from shared.bus import Message, topic_for
from shared.events import Envelope, Event
from shared.events.accounts import AccountOpened, AccountTransferred, NeedProfile
from shared.events.payments import CompletionCertified, EnrolmentCancelled, EnrolmentConfirmed
from shared.service import ServiceRuntime
from shared.settings import Settings
from tests.support import bearer, eventually, running_app, settings_for

IBAN = "DE89 3704 0044 0532 0130 00"
BIC = "COBADEFFXXX"


def provider_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Atelier Numérique",
        "country": "FR",
        "registration_number": "RN-" + uuid.uuid4().hex[:10],
        "quality_assurance": {
            "scheme": "Qualiopi",
            "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        },
        "payout": {"iban": IBAN, "bic": BIC},
    }
    body.update(overrides)
    return body


def course_body(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    body: dict[str, Any] = {
        "kind": "training",
        "title": "Welding basics",
        "description": "Hands-on introduction to arc welding in a certified workshop.",
        "language": "en",
        "learning_outcomes": ["Weld steel plates safely", "Read a welding procedure"],
        "eqf_level": 3,
        "isced_field": "0715",
        "esco_skills": ["http://data.europa.eu/esco/skill/0c1d9a8e-6a0e-4d3e-a9b4-1f5f1c2c7e11"],
        "workload_hours": 70,
        "ects": 2.5,
        "mode": "in_person",
        "region": "Bretagne",
        "price": 125_000,
        "tags": ["green"],
        "sessions": [
            {
                "session_id": str(uuid.uuid4()),
                "start": start.isoformat(),
                "end": (start + timedelta(days=10)).isoformat(),
                "seats": 12,
            }
        ],
        "descriptor": {
            "title": "Certificate in basic arc welding",
            "issuer_countries": ["FR"],
            "issuer_regions": ["Bretagne"],
            "awarding_bodies": ["Atelier Numérique"],
            "assessment_type": "Practical test observed by an assessor",
            "quality_assurance": "Qualiopi external audit",
            "prerequisites": "None",
            "supervision": "onsite_identity_verification",
            "grading_scheme": "pass/fail",
            "stackability": {"integration": "stackable", "towards": "CAP Welder"},
            "further_information": "https://example.org/welding",
        },
    }
    for key, value in overrides.items():
        body[key] = value
    return copy.deepcopy(body)


class Catalogue:
    """Tokens for each role and shortcuts for the common steps."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app, self.c, self.settings = app, client, settings
        self.agency = bearer(settings, "agency", agency_id="pes-fr")
        self.learner_id = uuid.uuid4()
        self.learner = bearer(settings, "learner", str(self.learner_id))
        self.auditor = bearer(settings, "auditor")

    @property
    def rt(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtimes["catalogue"]
        return runtime

    def provider_token(self, provider_id: str) -> dict[str, str]:
        return bearer(self.settings, "provider", provider_id=provider_id)

    async def provider(self, accredit: bool = True, **overrides: Any) -> tuple[str, dict[str, str]]:
        r = await self.c.post("/v1/providers", json=provider_body(**overrides), headers=self.agency)
        assert r.status_code == 201, r.text
        provider_id: str = r.json()["provider_id"]
        if accredit:
            r = await self.c.post(
                f"/v1/providers/{provider_id}/accredit",
                json={"reason_code": "qa_audit_passed"},
                headers=self.agency,
            )
            assert r.status_code == 200, r.text
        return provider_id, self.provider_token(provider_id)

    async def course(self, provider: dict[str, str], **overrides: Any) -> dict[str, Any]:
        r = await self.c.post("/v1/courses", json=course_body(**overrides), headers=provider)
        assert r.status_code == 201, r.text
        course: dict[str, Any] = r.json()
        return course

    async def approved(self, provider: dict[str, str], **overrides: Any) -> dict[str, Any]:
        course = await self.course(provider, **overrides)
        cid = course["course_id"]
        r = await self.c.post(f"/v1/courses/{cid}/submit", headers=provider)
        assert r.status_code == 200, r.text
        r = await self.c.post(
            f"/v1/courses/{cid}/approve",
            json={"reason_code": "meets_criteria"},
            headers=self.agency,
        )
        assert r.status_code == 200, r.text
        approved: dict[str, Any] = r.json()
        return approved

    async def publish(self, payload: Event, source: str) -> None:
        """Deliver another service's event to the catalogue, as the bus would."""
        envelope = Envelope.wrap(payload, source=f"/ila/{source}")
        topic = topic_for(payload.topic)
        await self.app.state.bus.publish(
            [Message(topic, payload.aggregate_id(), envelope.to_bytes())]
        )

    async def open_account(self, account_id: uuid.UUID, agency_id: str = "pes-fr") -> None:
        """The accounts service opened ``account_id`` for ``agency_id`` (the catalogue's read
        model has it when this returns)."""
        await self.publish(
            AccountOpened(
                account_id=account_id,
                agency_id=agency_id,
                profile=NeedProfile(qualification_level=3, employment_status="employed"),
                opened_at=datetime.now(UTC),
            ),
            "accounts",
        )
        await self.managed_by(account_id, agency_id)

    async def transfer_account(self, account_id: uuid.UUID, src: str, dst: str) -> None:
        await self.publish(
            AccountTransferred(account_id=account_id, from_agency_id=src, to_agency_id=dst),
            "accounts",
        )
        await self.managed_by(account_id, dst)

    async def managed_by(self, account_id: uuid.UUID, agency_id: str) -> None:
        sql = "SELECT agency_id FROM catalogue.accounts WHERE account_id = :a"
        await eventually(lambda: self.scalar(sql, a=account_id), lambda g: g == agency_id)

    async def enrolment(
        self,
        course: dict[str, Any],
        session_id: str | None = None,
        *,
        cancelled: bool = False,
        account_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Payments confirmed an enrolment of ``account_id`` (a new one by default) in the
        session (the course's first by default; cancelled if asked); the catalogue's read
        model has it when this returns."""
        enrolment_id, account_id = uuid.uuid4(), account_id or uuid.uuid4()
        session_id = session_id or course["content"]["sessions"][0]["session_id"]
        ref: dict[str, Any] = {
            "enrolment_id": enrolment_id,
            "account_id": account_id,
            "provider_id": course["provider_id"],
            "course_id": uuid.UUID(course["course_id"]),
            "session_id": uuid.UUID(session_id),
        }
        price = course["content"]["price"]
        await self.publish(
            EnrolmentConfirmed(
                **ref, price=price, covered=price, co_payment=0, participation_fee=0
            ),
            "payments",
        )
        live = "SELECT live FROM catalogue.session_enrolments WHERE enrolment_id = :e"
        await eventually(lambda: self.scalar(live, e=enrolment_id), lambda v: v is True)
        if cancelled:
            await self.publish(
                EnrolmentCancelled(
                    **ref,
                    cancelled_by="learner",
                    rule="free",
                    provider_share=0,
                    reason_code="other",
                ),
                "payments",
            )
            await eventually(lambda: self.scalar(live, e=enrolment_id), lambda v: v is False)
        return enrolment_id

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.rt.sessions() as session:
            return await session.scalar(text(sql), params)

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.rt.uow() as session:
            await session.execute(text(sql), params)

    async def events(self, type_suffix: str) -> list[dict[str, Any]]:
        """The catalogue's outbox rows of one event type, oldest first, as envelopes."""
        async with self.rt.sessions() as session:
            rows = (
                await session.execute(
                    text("SELECT body FROM catalogue.outbox WHERE type LIKE :t ORDER BY id"),
                    {"t": f"ila.catalogue.{type_suffix}.v%"},
                )
            ).scalars()
            return [json.loads(bytes(b)) for b in rows]


async def certified(cat: Catalogue, course: dict[str, Any], account: uuid.UUID) -> str:
    enrolment = uuid.uuid4()
    await cat.publish(
        CompletionCertified(
            enrolment_id=enrolment,
            account_id=account,
            course_id=uuid.UUID(course["course_id"]),
            course_version=course["version"],
            provider_id=course["provider_id"],
            completed_at=datetime.now(UTC),
            completion_rate=100,
            grade="pass",
        ),
        "payments",
    )
    sql = "SELECT credential_id FROM catalogue.credentials WHERE enrolment_id = :e"
    credential = await eventually(lambda: cat.scalar(sql, e=enrolment))
    return str(credential)


async def certify(
    cat: Catalogue,
    course: dict[str, Any],
    account_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    grade: str | None = "pass",
    version: int | None = None,
) -> Envelope:
    payload = CompletionCertified(
        enrolment_id=enrolment_id,
        account_id=account_id,
        course_id=uuid.UUID(course["course_id"]),
        course_version=version or course["version"],
        provider_id=course["provider_id"],
        completed_at=datetime.now(UTC),
        completion_rate=100,
        grade=grade,
    )
    envelope = Envelope.wrap(payload, source="/ila/payments")
    await cat.app.state.bus.publish(
        [Message(topic_for("payments"), payload.aggregate_id(), envelope.to_bytes())]
    )
    return envelope


async def verify(cat: Catalogue, document: Any) -> dict[str, Any]:
    r = await cat.c.post("/v1/credentials/verify", json=document)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def issue_one(cat: Catalogue, course: dict[str, Any]) -> dict[str, Any]:
    """A credential for a new enrolment of the test learner, as its holder reads it."""
    enrolment = uuid.uuid4()
    await certify(cat, course, cat.learner_id, enrolment)
    sql = "SELECT credential_id FROM catalogue.credentials WHERE enrolment_id = :e"
    cid = await eventually(lambda: cat.scalar(sql, e=enrolment))
    r = await cat.c.get(f"/v1/credentials/{cid}", headers=cat.learner)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def fingerprint(cat: Catalogue) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was."""
    tables = (
        "providers",
        "courses",
        "course_versions",
        "course_history",
        "credentials",
        "accounts",
        "session_enrolments",
    )
    parts = [
        await cat.scalar(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM catalogue.{name} t"
        )
        for name in tables
    ]
    parts.append(await cat.scalar("SELECT count(*) FROM catalogue.outbox"))
    return tuple(parts)


@asynccontextmanager
async def catalogue(db_url: str, **settings: Any) -> AsyncIterator[Catalogue]:
    s = settings_for(db_url, **settings)
    async with running_app([definition("catalogue")], s) as (app, client):
        yield Catalogue(app, client, s)
