"""What the accounts service lets out of its hands, without a database: pseudonymous
actors, data keys wrapped by a key-encryption key that is never stored, the key settings
production refuses, and old events read as the minimised ones."""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from services.accounts.handlers.personal import (
    Keyring,
    UnknownKek,
    decrypt_personal,
    encrypt_personal,
    new_key,
)
from shared.events.base import upcasts
from shared.outbox import EventContext, Outbox
from shared.pseudonym import pseudonymous_actor
from shared.settings import Settings, parse_keyring

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")


def kek(fill: bytes) -> str:
    return base64.b64encode(fill * 32).decode()


# --- pseudonymous actors ------------------------------------------------------------------


def test_a_person_is_a_stable_keyed_pseudonym_that_keeps_the_role() -> None:
    alice = pseudonymous_actor("agency:alice@pes.fr", "pepper")
    assert alice is not None and alice.startswith("agency:p-") and "alice" not in alice
    assert pseudonymous_actor("agency:alice@pes.fr", "pepper") == alice  # same person
    assert pseudonymous_actor("agency:bob@pes.fr", "pepper") != alice
    assert pseudonymous_actor("finance:alice@pes.fr", "pepper") != alice
    assert pseudonymous_actor("agency:alice@pes.fr", "other pepper") != alice
    assert pseudonymous_actor(alice, "pepper") == alice  # never hashed twice


@pytest.mark.parametrize("actor", [None, "system:sweeper", "cli:accounts-import:pes-fr", "x"])
def test_actors_that_are_no_person_stay_as_they_are(actor: str | None) -> None:
    assert pseudonymous_actor(actor, "pepper") == actor


def test_the_outbox_writes_the_pseudonym_into_the_envelope() -> None:
    from shared.events.accounts import PersonalDataErased

    outbox = Outbox("accounts", actor_pepper="pepper")
    env = outbox.envelope(PersonalDataErased(account_id=ACCOUNT), EventContext.new("qa:jane"))
    assert env.actor == pseudonymous_actor("qa:jane", "pepper") and b"jane" not in env.to_bytes()


# --- key wrapping -------------------------------------------------------------------------


def test_a_wrapped_key_opens_only_with_its_kek_and_for_its_account() -> None:
    ring = Keyring(parse_keyring(f"k2:{kek(b'2')},k1:{kek(b'1')}"))
    key = new_key()
    wrapped = ring.wrap(ACCOUNT, key)
    assert wrapped.kek_id == "k2" and key not in wrapped.wrapped
    assert ring.unwrap(ACCOUNT, wrapped) == key
    with pytest.raises(InvalidTag):
        ring.unwrap(OTHER, wrapped)  # a key moved to another account opens nothing
    with pytest.raises(InvalidTag):
        Keyring(parse_keyring(f"k2:{kek(b'9')}")).unwrap(ACCOUNT, wrapped)  # a wrong KEK
    with pytest.raises(UnknownKek, match="ILA_ACCOUNTS_KEK"):
        Keyring(parse_keyring(f"k1:{kek(b'1')}")).unwrap(ACCOUNT, wrapped)
    # the stored bytes are no usable data key themselves
    nonce, blob = encrypt_personal(key, ACCOUNT, {"given_name": "Ana"})
    with pytest.raises((InvalidTag, ValueError)):
        decrypt_personal(wrapped.wrapped[-32:], ACCOUNT, nonce, blob)


def test_rotation_keeps_older_keks_for_unwrapping() -> None:
    old = Keyring(parse_keyring(f"k1:{kek(b'1')}"))
    wrapped = old.wrap(ACCOUNT, b"d" * 32)
    rotated = Keyring(parse_keyring(f"k2:{kek(b'2')},k1:{kek(b'1')}"))
    assert rotated.unwrap(ACCOUNT, wrapped) == b"d" * 32
    rewrapped = rotated.wrap(ACCOUNT, rotated.unwrap(ACCOUNT, wrapped))
    assert rewrapped.kek_id == "k2"
    assert Keyring(parse_keyring(f"k2:{kek(b'2')}")).unwrap(ACCOUNT, rewrapped) == b"d" * 32


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "id:base64"),
        ("k1", "id:base64"),
        ("bad id:" + kek(b"1"), "id:base64"),
        ("k1:not base64!", "not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "not 32 bytes"),
        (f"k1:{kek(b'1')},k1:{kek(b'2')}", "twice"),
    ],
)
def test_a_malformed_kek_setting_is_refused_naming_it(value: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as err:
        Settings(accounts_kek=value)
    assert "ILA_ACCOUNTS_KEK" in str(err.value)


def test_production_refuses_a_short_actor_pepper_and_lists_the_dev_kek() -> None:
    with pytest.raises(ValidationError, match=r"ILA_ACTOR_PEPPER \(shorter than 32 bytes"):
        Settings(env="production", actor_pepper="short")
    assert "ILA_ACCOUNTS_KEK" in Settings().development_secrets()
    assert "ILA_ACTOR_PEPPER" in Settings().development_secrets()


# --- old events read as the minimised ones ---------------------------------------------------


def test_a_version_1_account_opened_loses_flags_birth_year_and_region() -> None:
    v1 = {
        "account_id": str(ACCOUNT),
        "agency_id": "pes-fr",
        "country": "FR",
        "region": "Bretagne",
        "birth_year": 1985,
        "profile": {
            "qualification_level": 3,
            "employment_status": "unemployed",
            "need_flags": ["disability"],
        },
        "opened_at": "2026-01-01T00:00:00Z",
    }
    [(ce_type, data)] = upcasts("ila.accounts.AccountOpened.v1", v1)
    assert ce_type == "ila.accounts.AccountOpened.v2"
    assert data == {
        "account_id": str(ACCOUNT),
        "agency_id": "pes-fr",
        "profile": {
            "qualification_level": 3,
            "employment_status": "unemployed",
            "need_tier": "high",
        },
        "opened_at": "2026-01-01T00:00:00Z",
    }
    [(_, closed)] = upcasts(
        "ila.accounts.AccountClosed.v1", {"account_id": str(ACCOUNT), "reason": "Ana moved"}
    )
    assert closed == {"account_id": str(ACCOUNT), "reason_code": "other"}
