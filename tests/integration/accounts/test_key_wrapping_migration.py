"""Migration 0003_key_wrapping on a database that already holds accounts: each plaintext data
key becomes a wrapped one, the need flags move into the sealed personal data (the row keeps
the tier), free-text reasons become the code ``other`` with the text as a note, and erased
accounts lose their note, country and region."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.accounts.handlers.personal import (
    Keyring,
    decrypt_personal,
    encrypt_personal,
    new_key,
)
from services.accounts.store.keys import WrappedKey
from shared.db import migrate
from shared.settings import get_settings

pytestmark = pytest.mark.postgres

INSERT = (
    "INSERT INTO accounts.accounts (account_id, national_id_hash, agency_id, birth_year, "
    "country, region, qualification_level, employment_status, need_flags, status, "
    "status_reason, personal_nonce, personal_ciphertext, erased_at) VALUES (:a, :h, 'pes-fr', "
    "1985, 'FR', 'Bretagne', 3, 'employed', :f, :s, :r, :n, :b, :e)"
)


async def test_existing_accounts_are_wrapped_and_minimised(db_url: str) -> None:
    engine = create_async_engine(db_url)
    live, erased = uuid.uuid4(), uuid.uuid4()
    key = new_key()
    nonce, blob = encrypt_personal(key, live, {"given_name": "Ana", "birth_date": "1985-01-02"})
    try:
        await migrate(engine, "accounts", "0002")
        async with engine.begin() as conn:
            await conn.execute(
                text(INSERT),
                {
                    "a": live,
                    "h": "h1",
                    "f": ["single_parent", "disability"],
                    "s": "suspended",
                    "r": "Ana lost her papers",
                    "n": nonce,
                    "b": blob,
                    "e": None,
                },
            )
            await conn.execute(
                text("INSERT INTO accounts.personal_keys (account_id, data_key) VALUES (:a, :k)"),
                {"a": live, "k": key},
            )
            await conn.execute(
                text(INSERT),
                {
                    "a": erased,
                    "h": "h2",
                    "f": ["rural"],
                    "s": "closed",
                    "r": "Ben moved away",
                    "n": None,
                    "b": None,
                    "e": datetime(2026, 1, 1, tzinfo=UTC),
                },
            )
        await migrate(engine, "accounts")
        async with engine.connect() as conn:
            rows = {
                r["account_id"]: r
                for r in (await conn.execute(text("SELECT * FROM accounts.accounts"))).mappings()
            }
            stored = (await conn.execute(text("SELECT * FROM accounts.personal_keys"))).mappings()
            keys = {r["account_id"]: r for r in stored}
    finally:
        await engine.dispose()

    assert set(keys) == {live}
    assert "data_key" not in keys[live] and key not in bytes(keys[live]["wrapped_key"])
    keyring = Keyring(get_settings().kek_ring())
    wrapped = WrappedKey(keys[live]["kek_id"], bytes(keys[live]["wrapped_key"]))
    assert keyring.unwrap(live, wrapped) == key
    row = rows[live]
    personal = decrypt_personal(
        key, live, bytes(row["personal_nonce"]), bytes(row["personal_ciphertext"])
    )
    assert personal == {
        "given_name": "Ana",
        "birth_date": "1985-01-02",
        "need_flags": ["disability", "single_parent"],
    }
    assert (row["need_tier"], row["status_reason_code"], row["status_note"]) == (
        "high",
        "other",
        "Ana lost her papers",
    )
    assert "need_flags" not in row
    # the birth year comes back as a column of its own for the statistics' age bands (0005s),
    # read from the personal data; an erased account has none
    assert (row["birth_year"], row["closed_at"]) == (1985, None)
    gone = rows[erased]
    assert (gone["need_tier"], gone["status_reason_code"]) == ("priority", "other")
    assert (gone["status_note"], gone["country"], gone["region"]) == (None, None, None)
    assert gone["birth_year"] is None and gone["closed_at"] == gone["updated_at"]
