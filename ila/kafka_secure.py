"""The secure variant of the local Kafka broker: SASL_SSL with SCRAM logins and ACLs.

``start_broker(workdir, secure=True)`` asks this module for what differs from the open
broker. Under ``workdir/tls`` it makes, once, a certificate authority and a broker
certificate for ``127.0.0.1``/``localhost`` (:mod:`ila.tls`), the broker's PEM keystore, and
a random SCRAM-SHA-512 password for each principal (``users.json``, readable by its owner
only). The principals are one per service (named like the service), ``audit`` (the
ledger's replay) and ``admin`` (a super user, for ACLs and operations).

The broker then has:

- one client listener, ``SASL_SSL``: TLS with the broker certificate, and a SCRAM login
  that yields ``User:<name>``; there is no listener without authentication;
- a ``CONTROLLER`` listener with mutual TLS: only a certificate signed by the broker's own
  authority (the broker's) gets in, as the super user ``User:CN=kafka-broker``;
- the SCRAM credentials written into the metadata log when the storage is formatted
  (``kafka-storage format --add-scram``), so they exist before the first client arrives;
- the ``StandardAuthorizer`` and no access without an ACL allowing it
  (:mod:`ila.kafka_acls` grants each principal what docs/security.md lists).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from ila import tls
from shared.bus.security import KafkaSecurity, Mechanism
from shared.settings import SERVICES

MECHANISM: Mechanism = "SCRAM-SHA-512"
ADMIN = "admin"
AUDIT = "audit"
PRINCIPALS = (*SERVICES, AUDIT, ADMIN)
BROKER_CN = "kafka-broker"
TLS_DIR = "tls"
USERS_FILE = "users.json"


@dataclass(frozen=True)
class SecureBroker:
    """What a client needs to reach the secure broker: the CA to trust and the logins."""

    directory: Path
    cafile: Path
    keystore: Path
    passwords: dict[str, str]

    def client(self, user: str = ADMIN) -> KafkaSecurity:
        """A SASL_SSL client logged in as ``user``, verifying the broker."""
        return KafkaSecurity(
            protocol="SASL_SSL",
            mechanism=MECHANISM,
            username=user,
            password=self.passwords[user],
            cafile=self.cafile,
        )

    def environment(self, user: str) -> dict[str, str]:
        """The ``ILA_KAFKA_*`` settings of a process logged in as ``user``."""
        return {
            "ILA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ILA_KAFKA_SASL_MECHANISM": MECHANISM,
            "ILA_KAFKA_SASL_USERNAME": user,
            "ILA_KAFKA_SASL_PASSWORD": self.passwords[user],
            "ILA_KAFKA_SSL_CAFILE": str(self.cafile),
        }


def prepare(workdir: Path) -> SecureBroker:
    """Make (or, on a restart, read back) the certificates and passwords under ``workdir/tls``."""
    directory = workdir / TLS_DIR
    users = directory / USERS_FILE
    keystore = directory / "broker-keystore.pem"
    if users.is_file() and keystore.is_file():
        passwords: dict[str, str] = json.loads(users.read_text())
        return SecureBroker(directory, directory / "ca.pem", keystore, passwords)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = tls.make_ca(directory, common_name="ILA local Kafka CA")
    tls.issue(ca, directory, "broker", common_name=BROKER_CN).bundle(keystore)
    # hex: no character needs quoting in --add-scram or in a JAAS line
    passwords = {user: secrets.token_hex(24) for user in PRINCIPALS}
    users.write_text(json.dumps(passwords, indent=2) + "\n")
    users.chmod(0o600)
    return SecureBroker(directory, ca.cert, keystore, passwords)


def server_properties(
    broker: SecureBroker, port: int, controller_port: int, host: str
) -> dict[str, str]:
    """The settings that replace the open broker's listeners (merged over them)."""
    admin = broker.passwords[ADMIN]
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{admin}";'
    )
    pem = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(broker.cafile),
    }
    settings = {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:SSL,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        # the controller listener takes only the broker's own certificate
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:CN={BROKER_CN}",
        "allow.everyone.if.no.acl.found": "false",
    }
    for prefix in ("", "listener.name.controller.", "listener.name.sasl_ssl."):
        settings.update({prefix + key: value for key, value in pem.items()})
    return settings


def format_arguments(broker: SecureBroker) -> list[str]:
    """``kafka-storage format`` arguments that create every principal's SCRAM credential."""
    arguments: list[str] = []
    for user, password in broker.passwords.items():
        arguments += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    return arguments
