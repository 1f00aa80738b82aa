"""Erasure across services: after DELETE personal-data the personal data are unreadable
everywhere, while the ledger and every event stay whole and verifiable."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ila.registry import all_definitions
from services.accounts.handlers.personal import Keyring, decrypt_personal
from services.accounts.store.keys import WrappedKey
from tests.integration.support.accounts import BODY
from tests.integration.support.erasure import RecordingBus, found, relays_idle
from tests.support import bearer, eventually, running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_erasure_leaves_the_ledger_whole_and_verifiable(db_url: str) -> None:
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    auditor = bearer(settings, "auditor")
    async with running_app(all_definitions(), settings, run_jobs=False) as (app, c):
        account = (await c.post("/v1/accounts", json=BODY, headers=agency)).json()["account_id"]
        await eventually(
            lambda: c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency),
            lambda r: r.status_code == 200,
        )
        r = await c.post(
            "/v1/ledger/grants",
            headers={**agency, "Idempotency-Key": "erasure-grant"},
            json={
                "account_id": account,
                "amount": 25_000,
                "funder_id": "region",
                "reason_code": "top_up",
            },
        )
        assert r.status_code == 201
        before = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()

        r = await c.delete(f"/v1/accounts/{account}/personal-data", headers=agency)
        assert r.status_code == 204
        got = (await c.get(f"/v1/accounts/{account}", headers=agency)).json()
        assert got["personal"] is None and got["personal_data_erased"] is True

        # nothing personal anywhere: not in any outbox, not in the ledger's events
        names = (
            BODY["personal"]["given_name"],
            BODY["personal"]["family_name"],  # type: ignore[index]
            BODY["national_id"],
        )
        # (the ledger's own role may not even read the other schemas: use the accounts engine)
        async with app.state.runtimes["accounts"].engine.connect() as conn:
            for table in (
                "accounts.outbox",
                "ledger.outbox",
                "payments.outbox",
                "catalogue.outbox",
            ):
                bodies = (await conn.execute(text(f"SELECT body FROM {table}"))).scalars()
                for body in bodies:
                    assert not any(n.encode() in bytes(body) for n in names), table
            events = (await conn.execute(text("SELECT data::text FROM ledger.events"))).scalars()
            assert not any(n in e for e in events for n in names)
            key = await conn.scalar(
                text("SELECT count(*) FROM accounts.personal_keys WHERE account_id = :a"),
                {"a": account},
            )
            assert key == 0

        after = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()
        assert after["items"][: len(before["items"])] == before["items"]
        balance = (await c.get(f"/v1/ledger/accounts/{account}/balance", headers=auditor)).json()
        assert balance["available"] == 25_000
        report = (await c.post("/v1/ledger/audit/verify", headers=auditor)).json()
        assert report["ok"], report


# --- after an erasure, nothing of the person anywhere -----------------------------------------

PERSON = {
    "national_id": "85.05.12-345.67",
    "birth_date": "1985-05-12",
    "country": "BE",
    "region": "Bruxelles-Capitale",
    "qualification_level": 2,
    "employment_status": "unemployed",
    "need_flags": ["disability", "single_parent"],
    "personal": {
        "given_name": "Wilhelmina",
        "family_name": "Oyelaran-Kowalczyk",
        "email": "w.oyelaran@example.net",
        "phone": "+32 470 12 34 56",
        "address": "Rue de la Loi 16, 1000 Bruxelles",
    },
}
NOTE = "phoned about her missing papers"  # the note names her too
NEW_FLAG = "rural_remote"
# everything that is the person's: names, contact data, birth date, national id, need flags,
# the agency's free-text note; and the subject of the agency officer's token, which events
# may only name by its pseudonym
OFFICER = "desk.officer@pes.be"
NEEDLES = [
    *PERSON["personal"].values(),  # type: ignore[attr-defined]
    "Wilhelmina",
    "Oyelaran",
    "Kowalczyk",
    "example.net",
    "1985-05-12",
    "85.05.12-345.67",
    "85051234567",
    "disability",
    "single_parent",
    NEW_FLAG,
    "missing papers",
]


async def every_row(conn: AsyncConnection) -> list[tuple[str, tuple[object, ...]]]:
    """Every row of every table of every schema but PostgreSQL's own."""
    tables = (
        await conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                "('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        )
    ).all()
    assert {"accounts", "ledger", "payments", "catalogue"} <= {t.table_schema for t in tables}
    rows = []
    for schema, table in tables:
        result = await conn.execute(text(f'SELECT * FROM "{schema}"."{table}"'))
        rows += [(f"{schema}.{table}", tuple(r)) for r in result]
    return rows


async def test_after_erasure_no_table_topic_or_stream_holds_the_person(db_url: str) -> None:
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", sub=OFFICER, agency_id="pes-be")
    auditor = bearer(settings, "auditor")
    bus = RecordingBus()
    async with running_app(all_definitions(), settings, bus=bus, run_jobs=False) as (app, c):
        r = await c.post("/v1/accounts", json=PERSON, headers=agency)
        assert r.status_code == 201, r.text
        account = r.json()["account_id"]
        aid = uuid.UUID(account)
        await eventually(
            lambda: c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency),
            lambda r: r.status_code == 200,
        )
        # a life with the service: a grant, a profile change, a suspension with a note, an
        # auditor's logged read
        r = await c.post(
            "/v1/ledger/grants",
            headers={**agency, "Idempotency-Key": "forget-grant"},
            json={
                "account_id": account,
                "amount": 30_000,
                "funder_id": "region",
                "reason_code": "top_up",
            },
        )
        assert r.status_code == 201, r.text
        r = await c.patch(
            f"/v1/accounts/{account}/profile",
            json={"need_flags": ["disability", NEW_FLAG]},
            headers=agency,
        )
        assert r.status_code == 200, r.text
        r = await c.post(
            f"/v1/accounts/{account}/suspend",
            json={"reason_code": "documents_missing", "note": f"Wilhelmina {NOTE}"},
            headers=agency,
        )
        assert r.status_code == 200, r.text
        r = await c.get(f"/v1/accounts/{account}?purpose=complaint", headers=auditor)
        assert r.json()["personal"]["given_name"] == "Wilhelmina"
        wallet = await eventually(
            lambda: c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor),
            lambda r: any(
                e["type"].startswith("ila.ledger.WalletSuspended") for e in r.json()["items"]
            ),
        )
        before = wallet.json()["items"]
        # the stream knows the tier and the reason code, not the flags or the note
        noted = [e["data"] for e in before if "ProfileNoted" in e["type"]]
        assert noted and all(d["profile"]["need_tier"] == "high" for d in noted)

        engine = app.state.runtimes["accounts"].engine
        keyring = app.state.runtimes["accounts"].components.config.keyring
        # a copy of the database taken before the erasure: the key row and the ciphertext
        async with engine.connect() as conn:
            backup_key = (
                await conn.execute(
                    text(
                        "SELECT kek_id, wrapped_key FROM accounts.personal_keys "
                        "WHERE account_id = :a"
                    ),
                    {"a": aid},
                )
            ).one()
            backup = (
                await conn.execute(
                    text(
                        "SELECT personal_nonce, personal_ciphertext FROM accounts.accounts "
                        "WHERE account_id = :a"
                    ),
                    {"a": aid},
                )
            ).one()
            # before: the search does find the person (the agency's note on the account), and
            # the KEK itself is nowhere in the database
            rows = await every_row(conn)
            assert {t for t, row in rows for v in row if found(v, NEEDLES)} == {"accounts.accounts"}
            for table, row in rows:
                for kek in keyring.keks.values():
                    assert not any(
                        isinstance(v, bytes | memoryview) and kek in bytes(v) for v in row
                    ), table
                    assert base64.b64encode(kek).decode() not in str(row), table

        r = await c.delete(f"/v1/accounts/{account}/personal-data", headers=agency)
        assert r.status_code == 204
        # what the ledger's and the payments' consumers do with it has happened
        await eventually(lambda: relays_idle(app), timeout=20)

        hits: list[tuple[str, list[str]]] = []
        async with engine.connect() as conn:
            for table, row in await every_row(conn):
                for value in row:
                    if where := found(value, NEEDLES):
                        hits.append((table, where))
            # the account row keeps what the rules need and nothing else
            kept = (
                (
                    await conn.execute(
                        text("SELECT * FROM accounts.accounts WHERE account_id = :a"), {"a": aid}
                    )
                )
                .mappings()
                .one()
            )
        assert hits == [], hits
        assert kept["country"] is None and kept["region"] is None and kept["status_note"] is None
        assert (kept["status"], kept["status_reason_code"], kept["agency_id"]) == (
            "suspended",
            "documents_missing",
            "pes-be",
        )
        # the birth year kept for the statistics' age bands goes with the personal data
        assert kept["birth_year"] is None

        # no topic (the bus's whole log) carries the person, nor the officer's token subject
        assert bus.log
        for message in bus.log:
            assert not found(message.value, [*NEEDLES, OFFICER]), message.topic
        # nor does the ledger stream, as an auditor reads it
        after = (await c.get(f"/v1/ledger/accounts/{account}/entries", headers=auditor)).json()
        assert not found(json.dumps(after), [*NEEDLES, OFFICER])
        assert after["items"][: len(before)] == before
        report = (await c.post("/v1/ledger/audit/verify", headers=auditor)).json()
        assert report["ok"], report

        # the copy taken before the erasure opens nothing without the key-encryption key
        nonce, ciphertext = bytes(backup.personal_nonce), bytes(backup.personal_ciphertext)
        copied = WrappedKey(backup_key.kek_id, bytes(backup_key.wrapped_key))
        with pytest.raises(InvalidTag):
            decrypt_personal(copied.wrapped[-32:], aid, nonce, ciphertext)
        with pytest.raises(InvalidTag):
            decrypt_personal(copied.wrapped[:32], aid, nonce, ciphertext)
        stranger = Keyring({copied.kek_id: bytes(32)})  # a guess at the KEK
        with pytest.raises(InvalidTag):
            stranger.unwrap(aid, copied)
        # (with the KEK, which lives outside the database, the copy would open: it is the
        # one thing a backup lacks)
        key = keyring.unwrap(aid, copied)
        assert decrypt_personal(key, aid, nonce, ciphertext)["given_name"] == "Wilhelmina"
