"""The dead letters of a real service, through its admin API and ``ila dlq``: listed with
their error, shown with their event, replayed after a fix (once)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from typer.testing import CliRunner

from ila.registry import definition
from services.ledger.commands import GrantCredits, OpenWallet, ReserveCredits
from services.ledger.deps import LedgerComponents
from services.ledger.handlers.wallets import execute
from shared.bus import Message, topic_for
from shared.events import Envelope
from shared.events.ledger import CourseRef
from shared.events.payments import ReleaseRequested
from shared.outbox import EventContext
from shared.service import ServiceRuntime, components_of
from shared.settings import Settings
from tests.support import bearer, running_app, settings_for

pytestmark = pytest.mark.postgres


@pytest.fixture
async def ledger(db_url: str) -> AsyncIterator[tuple[FastAPI, AsyncClient, Settings]]:
    settings = settings_for(db_url)
    async with running_app([definition("ledger")], settings, run_jobs=False) as (app, client):
        yield app, client, settings


def release(account: uuid.UUID, reservation: uuid.UUID) -> Message:
    event = ReleaseRequested(
        enrolment_id=uuid.uuid4(), account_id=account, reservation_id=reservation, reason="test"
    )
    envelope = Envelope.wrap(event, source="/ila/payments")
    return Message(topic_for("payments"), str(account), envelope.to_bytes())


async def reserve(rt: ServiceRuntime, account: uuid.UUID, reservation: uuid.UUID) -> None:
    """The fix: the reservation the release names exists now."""
    ledger = components_of(rt, LedgerComponents).ledger
    ctx = EventContext.new("system:test")
    async with rt.uow() as session:
        for command in (
            OpenWallet(account_id=account),
            GrantCredits(account_id=account, lot_id=uuid.uuid4(), amount=1_000, funder_id="s"),
            ReserveCredits(
                account_id=account,
                reservation_id=reservation,
                enrolment_id=uuid.uuid4(),
                amount=600,
                course=CourseRef(course_id=uuid.uuid4()),
            ),
        ):
            await execute(command, ledger.context(session, ctx))


async def test_an_admin_lists_shows_and_replays_dead_letters_after_a_fix(
    ledger: tuple[FastAPI, AsyncClient, Settings],
) -> None:
    app, c, settings = ledger
    rt: ServiceRuntime = app.state.runtimes["ledger"]
    admin = bearer(settings, "admin", sub="ops")
    account, reservation = uuid.uuid4(), uuid.uuid4()
    message = release(account, reservation)
    await rt.consumer.handle_batch([message, Message(topic_for("payments"), "k", b"{garbage")])

    for role in ("auditor", "finance", "agency"):
        r = await c.get("/v1/ledger/dead-letters", headers=bearer(settings, role, agency_id="a"))
        assert r.status_code == 403, (role, r.text)
    r = await c.get("/v1/ledger/dead-letters", headers=admin)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 2
    by_type = {i["type"]: i for i in items}
    dead = by_type["ila.payments.ReleaseRequested.v1"]
    assert "ReservationNotFound" in dead["error"] and dead["status"] == "open"
    assert by_type[None]["error"].startswith("unreadable envelope")
    r = await c.get(f"/v1/ledger/dead-letters/{dead['dead_letter_id']}", headers=admin)
    assert r.json()["event"]["data"]["reservation_id"] == str(reservation)
    r = await c.get(f"/v1/ledger/dead-letters/{uuid.uuid4()}", headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "dead_letter_not_found"

    # before the fix, a replay fails again and the letter stays open
    r = await c.post(f"/v1/ledger/dead-letters/{dead['dead_letter_id']}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["outcome"] == "failed", r.text
    await reserve(rt, account, reservation)
    r = await c.post(f"/v1/ledger/dead-letters/{dead['dead_letter_id']}/replay", headers=admin)
    assert r.json()["outcome"] == "applied", r.text
    balance = await c.get(
        f"/v1/ledger/accounts/{account}/balance", headers=bearer(settings, "auditor")
    )
    assert balance.json()["reserved"] == 0 and balance.json()["available"] == 1_000
    r = await c.post(f"/v1/ledger/dead-letters/{dead['dead_letter_id']}/replay", headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "dead_letter_replayed"
    await rt.consumer.handle_batch([message])  # a re-delivery: the inbox applied it once
    r = await c.post("/v1/ledger/dead-letters/replay", headers=admin)
    assert (r.json()["applied"], r.json()["failed"]) == (0, 1)
    r = await c.get("/v1/ledger/dead-letters?status=all", headers=admin)
    assert sorted(i["status"] for i in r.json()["items"]) == ["open", "replayed"]


async def test_every_service_has_its_dead_letters_route(db_url: str) -> None:
    """Even where the service's own routes take ``/v1/{service}/{id}`` (accounts)."""
    settings = settings_for(db_url)
    admin = bearer(settings, "admin", sub="ops")
    definitions = [definition(name) for name in ("accounts", "catalogue", "ledger", "payments")]
    async with running_app(definitions, settings, run_jobs=False) as (app, c):
        for name in ("accounts", "catalogue", "ledger", "payments"):
            rt: ServiceRuntime = app.state.runtimes[name]
            await rt.consumer.handle_batch([Message(topic_for("payments"), "k", b"{garbage")])
            r = await c.get(f"/v1/{name}/dead-letters", headers=admin)
            assert r.status_code == 200, (name, r.text)
            [item] = r.json()["items"]
            assert item["error"].startswith("unreadable envelope"), name


async def test_ila_dlq_lists_and_replays(
    ledger: tuple[FastAPI, AsyncClient, Settings], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ila.cli import app as cli
    from shared.settings import get_settings

    app, _, _ = ledger
    rt: ServiceRuntime = app.state.runtimes["ledger"]
    account, reservation = uuid.uuid4(), uuid.uuid4()
    await rt.consumer.handle_batch([release(account, reservation)])
    monkeypatch.setenv("ILA_DATABASE_URL", db_url)
    monkeypatch.setenv("ILA_LOG_JSON", "false")
    get_settings.cache_clear()
    runner = CliRunner()

    def ila(*args: str) -> Any:
        return asyncio.to_thread(runner.invoke, cli, list(args), catch_exceptions=False)

    try:
        listed = await ila("dlq", "list", "--service", "ledger")
        assert listed.exit_code == 0, listed.output
        [line] = listed.output.splitlines()
        dead_letter_id = line.split("\t")[1]
        assert "ReservationNotFound" in line
        shown = await ila("dlq", "show", dead_letter_id)
        assert shown.exit_code == 0 and str(reservation) in shown.output
        failed = await ila("dlq", "replay", dead_letter_id, "--service", "ledger")
        assert failed.exit_code == 1 and "failed" in failed.output
        await reserve(rt, account, reservation)
        replayed = await ila("dlq", "replay", "--all", "--service", "ledger")
        assert replayed.exit_code == 0 and "applied" in replayed.output, replayed.output
        assert (await ila("dlq", "list", "--service", "ledger")).output == ""
    finally:
        get_settings.cache_clear()
