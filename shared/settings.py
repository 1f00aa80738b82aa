"""Configuration of every service, read from the environment (prefix ``ILA_``).

The development defaults make ``make run`` work on a fresh machine; with
``ILA_ENV=production`` the documented default secrets are refused at start-up.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("accounts", "ledger", "catalogue", "payments")
SERVICE_PORTS = {"accounts": 8001, "ledger": 8002, "catalogue": 8003, "payments": 8004}
# The people's pages: a component that owns no money and no person's data, served beside
# the four services (``ila run``) or alone (``ila serve portal``)
PORTAL = "portal"
PORTAL_PORT = 8005

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
DEV_PEPPER = "dev-only-national-id-pepper-change-me"
DEV_CREDENTIAL_KEY_SEED = "dev-only-credential-signing-seed"
DEV_ACTOR_PEPPER = "dev-only-actor-pepper-change-me-0123456789"
# id:base64 of 32 bytes; the development key-encryption key of the accounts' data keys
DEV_ACCOUNTS_KEK = "dev:ZGV2LW9ubHktYWNjb3VudHMta2VrLWNoYW5nZS1tZSE="
DEV_ISSUER = "ila-dev"
DEV_CHECKPOINT_KEY = "dev-only-ledger-checkpoint-key-change-me"
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ILA_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    # ``ila run``'s server processes (each the whole system, all on ``port``)
    workers: int = Field(default=1, ge=1, le=64)
    data_dir: Path = Path("var")

    # One URL for every service, or one per service (ILA_LEDGER_DATABASE_URL ...).
    # Empty: an embedded PostgreSQL server under data_dir/postgres.
    database_url: str | None = None
    accounts_database_url: str | None = None
    ledger_database_url: str | None = None
    catalogue_database_url: str | None = None
    payments_database_url: str | None = None
    portal_database_url: str | None = None
    # Each service's connections: a fixed pool; a request beyond it waits up to
    # db_pool_timeout seconds for one to come back (then 503). Connections above the pool
    # (db_max_overflow) are opened at checkout and closed at return: under steady load they
    # cost a new server process per request.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    # TLS to PostgreSQL (a ``sslmode``/``sslrootcert`` in a URL wins for that URL):
    # verify-full checks the server's chain against db_sslrootcert and its host name.
    db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    db_sslrootcert: Path | None = None

    # Where the portal reaches the services' public APIs (a gateway in front of the four);
    # empty: the same application, in process (``ila run``).
    portal_api_url: str | None = None

    # Sign-in of the people (OpenID Connect, authorization code with PKCE): the provider's
    # issuer (discovery at <issuer>/.well-known/openid-configuration), this client's id and,
    # for a confidential client, its secret; the callback URL registered with the provider
    # (empty outside production: derived from the request); the ID token claim that carries
    # the national id; the scopes asked for. Production needs an https issuer and callback.
    oidc_issuer: str | None = None
    oidc_client_id: str = "ila-portal"
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_url: str | None = None
    oidc_national_id_claim: str = Field(default="national_id", min_length=1, max_length=200)
    oidc_scopes: str = "openid"

    # Empty: the in-process bus (all-in-one mode only).
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = Field(default="ila.", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    kafka_partitions: int = 6
    # How the clients reach the brokers (docs/security.md): SASL_SSL with a SCRAM login as the
    # service's own principal, the broker's certificate checked against kafka_ssl_cafile.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    consumer_max_attempts: int = 3
    relay_batch_size: int = 500
    relay_idle_interval: float = 0.5
    # while a relay has a backlog, one transaction of it takes full batches one after another
    # for this long, reading and marking the next while the bus takes the last (0: one batch)
    relay_pipeline_seconds: float = Field(default=1.0, ge=0, le=60)
    # while the consumer groups reading a service's topic are this many events behind, its
    # relay holds its bulk rows (an allocation's) back in the outbox (0: no bound)
    relay_bulk_max_lag: int = Field(default=20_000, ge=0)
    # an outbox row the bus refuses (not transiently) this many times is parked with an alert
    relay_park_after: int = Field(default=5, ge=1)
    # an event larger than this is parked at once (Kafka refuses records over ~1 MiB)
    outbox_max_event_bytes: int = Field(default=900_000, ge=1024)
    # replication factor of the topics the services create (3 on a three-broker cluster)
    kafka_replication_factor: int = Field(default=1, ge=1)
    # group commit in the ledger: a batch of commands closes at this size or this long
    # after its first command arrived
    ledger_batch_size: int = Field(default=256, ge=1, le=10_000)
    ledger_batch_window_ms: float = Field(default=2.0, ge=0, le=1000)
    # the same in payments, for the claims and the learners' confirmations it receives
    payments_batch_size: int = Field(default=256, ge=1, le=10_000)
    payments_batch_window_ms: float = Field(default=2.0, ge=0, le=1000)
    # /readyz answers 503 when a consumer group lags by more messages than this (0: never)
    readiness_max_lag: int = Field(default=0, ge=0)

    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = "ila"
    # Production verifies only asymmetric signatures (RS256 or EdDSA) with a PEM public key
    # or a JWKS URL; HS256 and the shared secret are for development and tests.
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None

    national_id_pepper: str = DEV_PEPPER
    # the key of the keyed hash that stands for a caller in event metadata (``role:p-...``)
    actor_pepper: str = DEV_ACTOR_PEPPER
    # key-encryption keys of the accounts' per-account data keys, ``id:base64,...`` (32-byte
    # AES keys); the first wraps new data keys, the others still unwrap (rotation)
    accounts_kek: str = DEV_ACCOUNTS_KEK
    credential_key_seed: str = DEV_CREDENTIAL_KEY_SEED
    # where verifiers reach the catalogue: the credentials' issuer id, its keys document and
    # its status lists are URLs under it (a credential names them for ever)
    catalogue_public_url: str = Field(
        default="http://127.0.0.1:8003", pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(/[\w.\-/]*)?$"
    )
    min_working_age: int = Field(default=18, ge=0, le=120)
    max_working_age: int = Field(default=67, ge=0, le=120)
    # the register feed: the agency that manages a new account when the record names none,
    # by "CC:region", then "CC" (JSON: {"FR:Bretagne": "pes-fr-bzh", "FR": "pes-fr"})
    register_agencies: dict[str, str] = Field(default_factory=dict)
    currency: str = Field(default="EUR", pattern="^[A-Z]{3}$")
    # how long a four-eyes proposal waits for its approver before it expires
    approval_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)

    # request bodies past this size are refused (413) while being read, before parsing
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # tokens living longer than this are refused, whatever their signature; clock skew allowed
    jwt_max_lifetime_seconds: int = Field(default=12 * 3600, ge=60)
    jwt_leeway_seconds: int = Field(default=5, ge=0, le=300)

    # the ledger signs a checkpoint of its store's head every N events or T seconds (HMAC)
    ledger_checkpoint_key: str = DEV_CHECKPOINT_KEY
    ledger_checkpoint_every_events: int = Field(default=1000, ge=1)
    ledger_checkpoint_every_seconds: float = Field(default=60.0, gt=0)

    # Outgoing e-mail (shared.mail): each service sends the messages it owns through this
    # SMTP server. Unset: messages wait in the service's ``outgoing_mail`` table (``ila run``
    # starts a local sink on 127.0.0.1:mail_sink_port and points these at it).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "ILA <no-reply@ila.invalid>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # how often the sender looks for pending messages; a failed send waits
    # mail_retry_base_seconds * 2**(attempts - 1) (at most mail_retry_max_seconds)
    mail_poll_seconds: float = Field(default=5.0, gt=0)
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    mail_retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    # how often the accounts service looks for deadlines to remind of and credit expiring
    mail_scan_seconds: float = Field(default=3600.0, gt=0)
    # a reminder goes this long before a proposal's consent deadline
    consent_reminder_lead_hours: int = Field(default=48, ge=1, le=24 * 30)
    # credit expiring within this many days is announced (once per lot)
    credit_expiry_notice_days: int = Field(default=90, ge=1, le=366)
    # development only (``ila run``): the port of the local SMTP sink
    mail_sink_port: int = Field(default=8025, ge=0, le=65535)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("register_agencies")
    @classmethod
    def _agencies(cls, value: dict[str, str]) -> dict[str, str]:
        for key, agency_id in value.items():
            if not re.fullmatch(r"[A-Z]{2}(:.{1,200})?", key):
                raise ValueError(f"ILA_REGISTER_AGENCIES: key {key!r} is not 'CC' or 'CC:region'")
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", agency_id):
                raise ValueError(f"ILA_REGISTER_AGENCIES: {agency_id!r} is no agency id")
        return value

    @field_validator("accounts_kek")
    @classmethod
    def _keyring(cls, value: str) -> str:
        parse_keyring(value)  # refuses a malformed or short key, naming the setting
        return value

    def kek_ring(self) -> dict[str, bytes]:
        """The accounts' key-encryption keys by id, the current one first."""
        return parse_keyring(self.accounts_kek)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.jwt_public_key is None and self.jwt_jwks_url is None:
            problems.append(
                "ILA_JWT_PUBLIC_KEY or ILA_JWT_JWKS_URL (asymmetric keys; HS256 is refused)"
            )
        for name, value, default in (
            ("ILA_NATIONAL_ID_PEPPER", self.national_id_pepper, DEV_PEPPER),
            ("ILA_CREDENTIAL_KEY_SEED", self.credential_key_seed, DEV_CREDENTIAL_KEY_SEED),
            ("ILA_LEDGER_CHECKPOINT_KEY", self.ledger_checkpoint_key, DEV_CHECKPOINT_KEY),
            ("ILA_ACTOR_PEPPER", self.actor_pepper, DEV_ACTOR_PEPPER),
        ):
            if value == default:
                problems.append(f"{name} (the development default)")
            elif len(value.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{name} (shorter than {MIN_SECRET_BYTES} bytes)")
        if self.accounts_kek == DEV_ACCOUNTS_KEK:
            problems.append("ILA_ACCOUNTS_KEK (the development default)")
        if self.jwt_issuer == DEV_ISSUER:
            problems.append(f"ILA_JWT_ISSUER (the development issuer {DEV_ISSUER!r})")
        if problems:
            raise ValueError("production refuses these settings: " + ", ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_open_bus(self) -> Settings:
        # whoever reaches a PLAINTEXT broker can publish ReservationCaptured and be paid
        if (
            self.env == "production"
            and self.kafka_bootstrap
            and self.kafka_security_protocol != "SASL_SSL"
        ):
            raise ValueError(
                "production refuses ILA_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol}: set SASL_SSL with the service's own "
                "ILA_KAFKA_SASL_USERNAME and ILA_KAFKA_SASL_PASSWORD"
            )
        return self

    def development_secrets(self) -> list[str]:
        """The settings still holding a development secret published in the README (the
        JWT secret only counts while tokens are checked with it)."""
        symmetric = self.jwt_public_key is None and self.jwt_jwks_url is None
        return [
            name
            for name, value, default in (
                ("ILA_JWT_SECRET", self.jwt_secret if symmetric else None, DEV_JWT_SECRET),
                ("ILA_NATIONAL_ID_PEPPER", self.national_id_pepper, DEV_PEPPER),
                ("ILA_CREDENTIAL_KEY_SEED", self.credential_key_seed, DEV_CREDENTIAL_KEY_SEED),
                ("ILA_ACTOR_PEPPER", self.actor_pepper, DEV_ACTOR_PEPPER),
                ("ILA_ACCOUNTS_KEK", self.accounts_kek, DEV_ACCOUNTS_KEK),
            )
            if value == default
        ]

    def check_listen(self, host: str) -> None:
        """Refuse to serve on a non-loopback address while a development secret is in use:
        anyone who read the README could mint an admin token or forge a national-id hash."""
        secrets = self.development_secrets()
        if secrets and not _is_loopback(host):
            raise ValueError(
                f"refusing to listen on {host!r} with development secrets "
                f"({', '.join(secrets)}): listen on 127.0.0.1 (ILA_HOST) or set them"
            )

    def db_pool(self) -> dict[str, Any]:
        """``make_engine``'s pool arguments."""
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }

    def db_tls(self) -> dict[str, Any]:
        """``make_engine``'s TLS arguments (a URL's own ``sslmode`` wins)."""
        return {"sslmode": self.db_sslmode, "sslrootcert": self.db_sslrootcert}

    def database_url_for(self, service: str) -> str | None:
        specific: str | None = getattr(self, f"{service}_database_url", None)
        return specific or self.database_url


KEK_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


def parse_keyring(value: str) -> dict[str, bytes]:
    """``id:base64,id:base64`` as keys by id, in order (the first is the current one). Each
    key is 32 bytes (AES-256); ids are letters, digits, ``.``, ``_`` and ``-``."""
    ring: dict[str, bytes] = {}
    for entry in value.split(","):
        kek_id, sep, encoded = entry.strip().partition(":")
        if not sep or not KEK_ID.fullmatch(kek_id):
            raise ValueError("ILA_ACCOUNTS_KEK: each key is written id:base64 (id: [A-Za-z0-9_.-])")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"ILA_ACCOUNTS_KEK: key {kek_id!r} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"ILA_ACCOUNTS_KEK: key {kek_id!r} is not 32 bytes")
        if kek_id in ring:
            raise ValueError(f"ILA_ACCOUNTS_KEK: key id {kek_id!r} appears twice")
        ring[kek_id] = key
    return ring


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
