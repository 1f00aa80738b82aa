"""How the services' Kafka clients authenticate to the brokers and verify them.

``PLAINTEXT`` (the default, for development on loopback) adds nothing. ``SASL_SSL`` is the
deployed setting: TLS with the broker's certificate verified against ``ILA_KAFKA_SSL_CAFILE``
(or the system's trust store) including its host name, and a SCRAM login as the service's
own principal (``ILA_KAFKA_SASL_USERNAME`` / ``ILA_KAFKA_SASL_PASSWORD``). Every client the
services make (producers, consumers, the admin client of ``ensure_topics``, the audit
replay) takes its options from :meth:`KafkaSecurity.client_options`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shared.settings import Settings

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    cafile: Path | None = None
    # a client certificate (mutual TLS), when the brokers ask for one
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if self.uses_sasl and not (self.username and self.password):
            raise ValueError(
                f"Kafka security protocol {self.protocol} needs ILA_KAFKA_SASL_USERNAME "
                "and ILA_KAFKA_SASL_PASSWORD"
            )

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        return cls(
            protocol=settings.kafka_security_protocol,
            mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=(
                settings.kafka_sasl_password.get_secret_value()
                if settings.kafka_sasl_password is not None
                else None
            ),
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's chain and host name (never switched off here)."""
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.cafile) if self.cafile else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return (
            f"KafkaSecurity(protocol={self.protocol!r}, mechanism={self.mechanism!r}, "
            f"username={self.username!r}, cafile={self.cafile!r})"
        )


PLAINTEXT = KafkaSecurity()
