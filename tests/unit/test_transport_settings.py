"""Transport security without a broker or server: the ACL table against the services' own
consumers, the settings that turn TLS on, and what production refuses."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from ila.kafka_acls import READS, all_acls, service_acls
from ila.registry import all_definitions
from ila.tls import issue, make_ca
from shared.bus import set_topic_prefix, topic_for
from shared.bus.inprocess import InProcessBus
from shared.bus.security import KafkaSecurity
from shared.db import make_engine, make_sessionmaker, ssl_argument
from shared.inbox import EventConsumer
from shared.outbox import Outbox, Relay
from shared.service import ServiceRuntime
from shared.settings import SERVICES, Settings


async def test_the_acl_table_grants_exactly_the_topics_each_service_consumes() -> None:
    # each service's setup registers its consumers exactly as when it starts
    set_topic_prefix("ila.")
    settings = Settings(env="test")
    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        for definition in all_definitions():
            bus = InProcessBus()
            sessions = make_sessionmaker(engine)
            outbox = Outbox(definition.name)
            runtime = ServiceRuntime(
                name=definition.name,
                settings=settings,
                engine=engine,
                sessions=sessions,
                bus=bus,
                outbox=outbox,
                relay=Relay(outbox, sessions, bus),
                consumer=EventConsumer(definition.name, sessions, bus),
            )
            definition.setup(runtime)
            consumed = {topic.removeprefix("ila.") for topic in runtime.consumer.topics}
            assert consumed == set(READS[definition.name]), definition.name
            allowed_reads = {
                acl.name for acl in service_acls(definition.name) if acl.operation == "READ"
            }
            group = {definition.name} if consumed else set()
            assert allowed_reads == runtime.consumer.topics | group
    finally:
        await engine.dispose()


def test_each_principal_writes_only_its_own_topics() -> None:
    for service in SERVICES:
        writes = {
            acl.name
            for acl in all_acls()
            if acl.operation in ("WRITE", "CREATE") and acl.principal == f"User:{service}"
        }
        assert writes == {topic_for(service), f"{topic_for(service)}.dlt"}
    # the audit principal only reads
    assert {acl.operation for acl in all_acls() if acl.principal == "User:audit"} == {
        "READ",
        "DESCRIBE",
    }


def test_kafka_security_from_settings(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    settings = Settings(
        env="test",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="ledger",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=ca.cert,
    )
    security = KafkaSecurity.from_settings(settings)
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "ledger"
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert "s3cret" not in repr(security) and "s3cret" not in repr(settings)
    # SASL without a login is a configuration error, named
    with pytest.raises(ValueError, match="ILA_KAFKA_SASL_USERNAME"):
        KafkaSecurity.from_settings(Settings(env="test", kafka_security_protocol="SASL_SSL"))
    assert KafkaSecurity.from_settings(Settings(env="test")).client_options() == {
        "security_protocol": "PLAINTEXT"
    }


def test_production_refuses_an_open_bus() -> None:
    strong = {
        "env": "production",
        "jwt_public_key": "-----BEGIN PUBLIC KEY-----",
        "jwt_issuer": "https://id.example",
        "national_id_pepper": "p" * 40,
        "credential_key_seed": "s" * 40,
        "ledger_checkpoint_key": "c" * 40,
        "actor_pepper": "a" * 40,
        "accounts_kek": "k1:" + base64.b64encode(b"k" * 32).decode(),
        "kafka_bootstrap": "kafka:9093",
    }
    with pytest.raises(ValidationError, match="ILA_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"):
        Settings(**strong)
    Settings(
        **strong,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="ledger",
        kafka_sasl_password="x" * 32,
    )


def test_database_tls_modes(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    issue(ca, tmp_path, "server", common_name="db")
    full = ssl_argument("verify-full", ca.cert)
    assert isinstance(full, ssl.SSLContext)
    assert full.check_hostname and full.verify_mode == ssl.CERT_REQUIRED
    chain_only = ssl_argument("verify-ca", ca.cert)
    assert isinstance(chain_only, ssl.SSLContext) and not chain_only.check_hostname
    assert ssl_argument(None, ca.cert) is not None  # a root certificate alone means verify-full
    assert ssl_argument("require", None) == "require"
    assert ssl_argument(None, None) is None
    with pytest.raises(ValueError, match="sslmode"):
        ssl_argument("verify-everything", None)
    # libpq's names in the URL are taken out of what asyncpg is handed
    engine = make_engine(
        f"postgresql+asyncpg://u@127.0.0.1:5/db?sslmode=verify-full&sslrootcert={ca.cert}"
    )
    assert "sslmode" not in str(engine.url) and "sslrootcert" not in str(engine.url)
