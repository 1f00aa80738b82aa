"""No event names a person by their token's subject: through a flow in which people of
every role act (an agency opens and credits an account, an admin proposes a reversal and
finance approves it, an agency proposes a provider's new bank details and finance approves
them), every message the bus carried, every outbox row, the ledger's stream and the
proposals tables name them by keyed pseudonyms only, in the events' data as in their
metadata."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from ila.registry import all_definitions
from shared.clock import Clock
from shared.pseudonym import pseudonymous_actor
from tests.integration.support.erasure import RecordingBus, found, relays_idle
from tests.integration.support.payments import World
from tests.support import bearer, eventually, running_app, settings_for

pytestmark = pytest.mark.postgres

AGENT = "agent.smith@pes.fr"
ADMIN = "ada.lovelace@ila.example"
FINANCE = "frank.fin@ila.example"
VERIFIER = "vera.verify@ila.example"
SUBJECTS = [AGENT, ADMIN, FINANCE, VERIFIER]

TABLES = (
    "SELECT body FROM accounts.outbox",
    "SELECT body FROM ledger.outbox",
    "SELECT body FROM payments.outbox",
    "SELECT body FROM catalogue.outbox",
    "SELECT data::text || metadata::text FROM ledger.events",
    "SELECT row_to_json(a)::text FROM ledger.approvals a",
    "SELECT row_to_json(a)::text FROM payments.approvals a",
)


async def test_events_name_people_by_pseudonyms_only(db_url: str) -> None:
    settings = settings_for(db_url)
    pepper = settings.actor_pepper
    agency = bearer(settings, "agency", sub=AGENT, agency_id="pes-fr")
    admin = bearer(settings, "admin", sub=ADMIN)
    finance = bearer(settings, "finance", sub=FINANCE)
    auditor = bearer(settings, "auditor")
    bus = RecordingBus()
    async with running_app(all_definitions(), settings, bus=bus, run_jobs=False) as (app, c):
        world = World(app, c, settings, Clock())
        world.agency, world.finance = agency, bearer(settings, "finance", sub=VERIFIER)
        account = await world.account(credit=20_000)

        # the ledger: an admin proposes to reverse the grant, finance approves
        entries = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()[
            "items"
        ]
        lot = next(e["data"]["lot_id"] for e in entries if "CreditsGranted" in e["type"])
        r = await c.post(
            f"/v1/ledger/accounts/{account}/reversals",
            headers={**admin, "Idempotency-Key": str(uuid.uuid4())},
            json={"target": {"kind": "grant", "lot_id": lot}, "reason_code": "wrong_amount"},
        )
        assert r.status_code == 202, r.text
        # the approver sees who proposed, as a pseudonym
        pending = (await c.get(r.headers["location"], headers=finance)).json()
        assert pending["proposed_by"] == pseudonymous_actor(f"admin:{ADMIN}", pepper)
        r = await c.post(f"{r.headers['location']}/approve", headers=finance)
        assert r.status_code == 200, r.text
        assert r.json()["decided_by"] == pseudonymous_actor(f"finance:{FINANCE}", pepper)
        assert not found(r.text, SUBJECTS)

        # payments: the agency proposes new bank details, finance approves them
        await world.register_provider("pz")
        r = await c.put(
            "/v1/payees/pz",
            headers=agency,
            json={"name": "Provider PZ", "iban": "FR14 2004 1010 0505 0001 3M02 606"},
        )
        assert r.status_code == 202, r.text
        r = await c.post(
            f"/v1/payments/approvals/{r.json()['approval_id']}/approve", headers=finance
        )
        assert r.status_code == 200, r.text

        await eventually(lambda: relays_idle(app), timeout=20)
        for message in bus.log:
            assert not found(message.value, SUBJECTS), message.value
            assert not any(found(v, SUBJECTS) for _, v in message.headers), message.headers
        sent = b"".join(m.value for m in bus.log)
        for ce_type in (
            b"ila.ledger.EntryReversed.v2",
            b"ila.ledger.ApprovalRequested.v1",
            b"ila.ledger.ApprovalDecided.v1",
            b"ila.payments.ApprovalRequested.v1",
            b"ila.payments.ApprovalDecided.v1",
            b"ila.payments.PayeeChanged.v1",
        ):
            assert ce_type in sent, ce_type
        # (the events did name them: by their pseudonyms)
        for actor in (f"agency:{AGENT}", f"admin:{ADMIN}", f"finance:{FINANCE}"):
            assert pseudonymous_actor(actor, pepper).encode() in sent, actor

        async with app.state.runtimes["accounts"].engine.connect() as conn:
            for query in TABLES:
                rows = (await conn.execute(text(query))).scalars().all()
                assert rows or "catalogue" in query, query  # (no catalogue step here)
                assert not [v for v in rows if found(v, SUBJECTS)], query
        report = (await c.post("/v1/ledger/audit/verify", headers=auditor)).json()
        assert report["ok"], report
