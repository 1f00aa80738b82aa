"""The Kafka ACLs each principal needs, and granting them (docs/security.md lists the same).

Each service logs in as its own principal (``User:<service>``) and may:

- write, create and describe its own topic ``<prefix><service>`` and its dead-letter
  topic ``<prefix><service>.dlt`` (creating them at start-up, ``ensure_topics``);
- read and describe only the topics it consumes (:data:`READS`);
- read (join, commit offsets in) its consumer group, named like the service;
- describe the consumer groups that read its topic (:func:`shared.bus.topics.readers`):
  its relay reads how far behind they are, to hold back its bulk rows.

``User:audit`` (the ledger's replay, ``ila audit replay``) reads the ledger's topic
with throw-away groups ``ila-audit-replay-*``. Nothing else is allowed: the broker runs with
``allow.everyone.if.no.acl.found=false``. An idempotent producer needs no cluster-wide right
since Kafka 3.0 (KIP-679): WRITE on a topic is enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest

from shared.bus.security import KafkaSecurity
from shared.bus.topics import READS, readers
from shared.settings import SERVICES

AUDIT_GROUP_PREFIX = "ila-audit-replay-"

Resource = Literal["topic", "group"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE"]

# Kafka's wire codes (org.apache.kafka.common.resource / acl)
_RESOURCE = {"topic": 2, "group": 3}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}
_ALLOW = 3


@dataclass(frozen=True)
class Acl:
    """Allow ``principal`` to ``operation`` on a topic or group named (or prefixed) ``name``."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Literal["literal", "prefixed"] = "literal"

    def __str__(self) -> str:
        what = f"{self.resource} {self.name}" + ("*" if self.pattern == "prefixed" else "")
        return f"{self.principal} {self.operation} {what}"


def service_acls(service: str, prefix: str = "ila.", user: str | None = None) -> list[Acl]:
    """What ``service``'s principal (``User:<user or service>``) may do, and nothing more."""
    principal = f"User:{user or service}"
    acls: list[Acl] = []
    for topic in (f"{prefix}{service}", f"{prefix}{service}.dlt"):
        acls += [Acl(principal, "topic", topic, op) for op in ("WRITE", "CREATE", "DESCRIBE")]
    for source in READS[service]:
        acls += [Acl(principal, "topic", f"{prefix}{source}", op) for op in ("READ", "DESCRIBE")]
    if READS[service]:
        acls.append(Acl(principal, "group", service, "READ"))
    # the relay holds its bulk rows back while the groups reading its topic are behind
    # (shared/outbox.py): it reads their committed offsets, nothing else of theirs
    acls += [Acl(principal, "group", group, "DESCRIBE") for group in readers(service)]
    return acls


def audit_acls(prefix: str = "ila.", user: str = "audit") -> list[Acl]:
    """The ledger replay's principal: read the ledger topic, in its own throw-away groups."""
    principal = f"User:{user}"
    return [
        Acl(principal, "topic", f"{prefix}ledger", "READ"),
        Acl(principal, "topic", f"{prefix}ledger", "DESCRIBE"),
        Acl(principal, "group", AUDIT_GROUP_PREFIX, "READ", "prefixed"),
    ]


def all_acls(prefix: str = "ila.") -> list[Acl]:
    return [acl for service in SERVICES for acl in service_acls(service, prefix)] + audit_acls(
        prefix
    )


async def grant(
    bootstrap: str, security: KafkaSecurity, acls: Iterable[Acl], within: float = 30.0
) -> None:
    """Create ``acls`` (existing ones are left as they are) as a principal allowed to,
    e.g. the super user of :mod:`ila.kafka_secure`. Raises RuntimeError naming the ACL the
    broker refused."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(within * 1000),
        **security.client_options(),
    )
    await admin.start()
    try:
        for acl in acls:
            request = CreateAclsRequest(
                _RESOURCE[acl.resource],
                acl.name,
                _PATTERN[acl.pattern],
                acl.principal,
                "*",
                _OPERATION[acl.operation],
                _ALLOW,
            )
            response: Any = await admin._send_request(request)
            _raise_for(acl, response.creation_responses)
    finally:
        await admin.close()


def _raise_for(acl: Acl, results: Sequence[Any]) -> None:
    for code, message in results:
        if code:
            raise RuntimeError(
                f"creating the ACL {acl} failed: {for_code(code).__name__} {message}"
            )
