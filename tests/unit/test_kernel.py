"""The shared kernel's pure parts: settings, tokens, the envelope, generated documents."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import ValidationError

from shared.auth import TokenVerifier, mint_token
from shared.events import Envelope, registry
from shared.events.accounts import AccountSuspended
from shared.events.docs import render_all
from shared.problems import Unauthorized
from shared.settings import Settings
from tests.unit.support import wrapped_by_sqlalchemy

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_KEK = "k1:" + base64.b64encode(b"k" * 32).decode()


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(env="production")
    message = str(err.value)
    assert "ILA_NATIONAL_ID_PEPPER" in message and "ILA_JWT_PUBLIC_KEY" in message
    assert "ILA_LEDGER_CHECKPOINT_KEY" in message
    assert "ILA_ACTOR_PEPPER" in message and "ILA_ACCOUNTS_KEK" in message


def test_production_starts_with_its_own_secrets() -> None:
    s = Settings(
        env="production",
        jwt_public_key="PEM",
        jwt_issuer="https://idp.example.eu",
        national_id_pepper="p" * 40,
        credential_key_seed="s" * 40,
        ledger_checkpoint_key="c" * 40,
        actor_pepper="a" * 40,
        accounts_kek=PRODUCTION_KEK,
    )
    assert s.env == "production"


def _claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "ila-dev",
        "aud": "ila",
        "sub": "u1",
        "role": "auditor",
        "iat": now,
        "exp": now + 60,
        **extra,
    }


def test_development_tokens_round_trip() -> None:
    s = Settings()
    token = mint_token(s, role="agency", sub="x", agency_id="pes-fr")
    p = TokenVerifier(s).verify(token)
    assert p.role == "agency" and p.agency_id == "pes-fr" and p.actor == "agency:x"


@pytest.mark.parametrize(
    "claims, why",
    [
        (_claims(exp=int(time.time()) - 10), "expired"),
        (_claims(aud="other"), "audience"),
        (_claims(iss="someone"), "issuer"),
        (_claims(role="root"), "role"),
        (_claims(role="agency"), "agency_id"),
        (_claims(role="provider"), "provider_id"),
    ],
)
def test_bad_tokens_are_refused(claims: dict[str, object], why: str) -> None:
    s = Settings()
    token = jwt.encode(claims, s.jwt_secret, algorithm="HS256")
    with pytest.raises(Unauthorized):
        TokenVerifier(s).verify(token)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = jwt.encode(_claims(), "another-secret-that-is-long-enough-xxxxxxxx", algorithm="HS256")
    with pytest.raises(Unauthorized):
        TokenVerifier(Settings()).verify(token)


async def test_a_token_that_passed_is_remembered_and_a_refused_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Settings()
    verifier = TokenVerifier(s)
    decoded: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    token = mint_token(s, role="agency", sub="x", agency_id="pes-fr")
    first = await verifier.verify_async(token)
    assert await verifier.verify_async(token) is first
    assert decoded == [token]  # checked once
    # a token differing in one character is another token, checked (and refused)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify_async(tampered)
    assert decoded == [token, tampered, tampered]


async def test_a_remembered_token_is_not_taken_past_its_expiry() -> None:
    s = Settings(jwt_leeway_seconds=0)
    verifier = TokenVerifier(s)
    token = jwt.encode(_claims(exp=int(time.time()) + 1), s.jwt_secret, algorithm="HS256")
    assert (await verifier.verify_async(token)).role == "auditor"
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.2)
    with pytest.raises(Unauthorized):
        await verifier.verify_async(token)


async def test_the_tokens_remembered_are_bounded() -> None:
    s = Settings()
    verifier = TokenVerifier(s)
    verifier.REMEMBERED_AT_MOST = 2
    tokens = [mint_token(s, role="learner", sub=str(uuid.uuid4())) for _ in range(3)]
    for token in tokens:
        await verifier.verify_async(token)
    assert list(verifier._passed) == tokens[1:]


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_production_verifies_asymmetric_keys_and_refuses_hs256(kind: str) -> None:
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        alg = "RS256"
    else:
        key = ed25519.Ed25519PrivateKey.generate()  # type: ignore[assignment]
        alg = "EdDSA"
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    s = Settings(
        env="production",
        jwt_public_key=pem,
        jwt_issuer="https://idp.example.eu",
        national_id_pepper="p" * 40,
        credential_key_seed="s" * 40,
        ledger_checkpoint_key="c" * 40,
        actor_pepper="a" * 40,
        accounts_kek=PRODUCTION_KEK,
    )
    verifier = TokenVerifier(s)
    claims = _claims(iss="https://idp.example.eu")
    assert verifier.verify(jwt.encode(claims, key, algorithm=alg)).role == "auditor"
    # an HS256 token signed with the public key as a secret (algorithm confusion) fails
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verifier.verify(forged)
    with pytest.raises(RuntimeError):
        mint_token(s, role="admin", sub="a")


def test_envelope_is_a_cloudevent_and_round_trips() -> None:
    event = AccountSuspended(account_id=uuid.uuid4(), reason_code="fraud_suspected")
    env = Envelope.wrap(event, source="/ila/accounts", actor="agency:x")
    doc = json.loads(env.to_bytes())
    for attribute in (
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "data",
        "datacontenttype",
        "correlationid",
        "schemaversion",
    ):
        assert attribute in doc
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "ila.accounts.AccountSuspended.v2"
    assert doc["subject"] == str(event.account_id)
    back = Envelope.from_bytes(env.to_bytes())
    assert back.payload() == event


def test_event_types_are_registered_by_stable_name_and_version() -> None:
    types = registry()
    assert "ila.accounts.AccountOpened.v2" in types
    assert all(t.startswith("ila.") and t.rsplit(".", 1)[1].startswith("v") for t in types)


def test_checked_in_event_documents_are_current() -> None:
    """`ila schemas` writes docs/events; this fails when a model changed without it."""
    out = REPO / "docs" / "events"
    files = render_all()
    stale = [n for n, c in files.items() if not (out / n).exists() or (out / n).read_text() != c]
    assert not stale, f"run `make schemas`: stale {stale}"
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.json")}
    assert on_disk == set(files), f"remove documents of deleted events: {on_disk - set(files)}"
    asyncapi = json.loads(files["asyncapi.json"])
    assert asyncapi["asyncapi"].startswith("3.")


@pytest.mark.parametrize("wrap", [False, True], ids=["raw asyncpg", "through SQLAlchemy"])
def test_transient_and_permanent_database_errors_are_told_apart(wrap: bool) -> None:
    import asyncpg.exceptions as pg
    from asyncpg.exceptions import _base

    from shared.db import is_transient

    def check(exc: BaseException) -> bool:
        return is_transient(wrapped_by_sqlalchemy(exc) if wrap else exc)

    # retried as a whole: the same batch will succeed later
    assert check(pg.DeadlockDetectedError("deadlock detected"))
    assert check(pg.SerializationError("could not serialize access"))
    assert check(pg.LockNotAvailableError("lock timeout"))
    assert check(pg.ConnectionDoesNotExistError("connection was closed in the middle"))
    assert check(pg.AdminShutdownError("terminating connection"))
    assert check(_base.InterfaceError("cannot perform operation: connection is closed"))
    # permanent: the same message fails every time, so it goes to the dead letters
    assert not check(_base.DataError("invalid input for query argument $1: 'x' (str)"))
    assert not check(pg.NumericValueOutOfRangeError("value out of range"))
    assert not check(pg.UniqueViolationError("duplicate key"))
    assert not check(pg.InvalidTextRepresentationError("invalid input syntax"))
    assert not check(ValueError("a rule"))
