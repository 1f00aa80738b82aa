"""Throw-away certificates for local brokers and database servers (the ``cryptography`` package).

A development or test setup that runs Kafka over SASL_SSL, or PostgreSQL with ``ssl=on``,
needs a certificate authority the clients trust and a server certificate for the loopback
names they dial (``127.0.0.1``, ``localhost``). :func:`make_ca` makes the authority,
:func:`issue` a certificate signed by it; both write PEM files (keys unencrypted, PKCS#8,
readable by their owner only). Nothing here is meant for production certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key on disk (PEM)."""

    cert: Path
    key: Path

    def bundle(self, path: Path) -> Path:
        """Key then certificate in one file: Kafka's PEM keystore format."""
        path.write_bytes(self.key.read_bytes() + self.cert.read_bytes())
        path.chmod(0o600)
        return path


@dataclass(frozen=True)
class Authority(Issued):
    """A certificate authority; ``cert`` is the file clients trust."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a little clock skew


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path)


def make_ca(directory: Path, name: str = "ca", common_name: str = "ILA test CA") -> Authority:
    """A self-signed certificate authority written to ``directory/name.{pem,key}``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    issued = _write(directory, name, cert, key)
    return Authority(issued.cert, issued.key)


def issue(
    ca: Authority,
    directory: Path,
    name: str,
    *,
    common_name: str,
    hosts: tuple[str, ...] = LOOPBACK_NAMES,
) -> Issued:
    """A certificate for ``hosts`` (IP addresses or DNS names) signed by ``ca``, usable by a
    server and as a client certificate (a broker dials its own controller with it)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{ca.key} is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _write(directory, name, cert, key)


def chown(path: Path, user: str) -> None:
    """Hand a file to the system user a server runs as (the embedded PostgreSQL, as root)."""
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
