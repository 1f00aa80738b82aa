"""The OpenID Connect provider of the tests and of development, from Maven jars.

NAV's ``mock-oauth2-server`` (``deploy/oidc/pom.xml``), fetched once into ``.cache/oidc``
the way the Kafka jars are (:func:`ila.kafka_jars.copy_classpath`) and run on Java 17+ on a
127.0.0.1 port. It is a real provider: discovery, a login form where a person types a
subject and the claims of their ID token (``{"national_id": "..."}``), the authorization
code flow with PKCE (it checks the verifier), single-use codes and RS256-signed ID tokens
with their JWKS. The issuer is ``http://127.0.0.1:<port>/ila``.

:func:`start_provider` returns once discovery answers; ``workdir/provider.json`` records
the running provider (``ila oidc start`` / ``ila oidc stop``), ``workdir/provider.log``
its output. Never part of a production deployment: there the portal signs people in
against the national identity provider.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ila.detached import pid_runs, read_state, signal_group
from ila.kafka_jars import REPO_ROOT, copy_classpath, find_java

HOST = "127.0.0.1"
ISSUER_ID = "ila"
DEFAULT_CACHE: Path = REPO_ROOT / ".cache" / "oidc"
POM: Path = REPO_ROOT / "deploy" / "oidc" / "pom.xml"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
STATE_FILE = "provider.json"
LOG_FILE = "provider.log"
# the development provider's port (``ila oidc start``), so its issuer stays the same
DEV_PORT = 8090
# the provider's own configuration: the login form where a subject and claims are typed
CONFIG = {"interactiveLogin": True}


@dataclass
class OidcProvider:
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    def __post_init__(self) -> None:
        if self.pid is None and self.process is not None:
            self.pid = self.process.pid

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}/{ISSUER_ID}"

    @property
    def discovery(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


def fetch_jars(cache: Path = DEFAULT_CACHE) -> Path:
    """The provider's runtime classpath in ``cache/libs``, fetched with Maven when missing or
    when the pom changed."""
    return copy_classpath(POM, cache, "mock-oauth2-server-*.jar", "the OIDC test provider's jars")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _marker(workdir: Path) -> str:
    # on the JVM's command line: tells our provider from any other process with the same pid
    return f"-Dila.oidc.workdir={workdir}"


def _pid_is_provider(pid: int, workdir: Path) -> bool:
    return pid_runs(pid, _marker(workdir).encode(), MAIN_CLASS.encode())


def running_provider(workdir: Path) -> OidcProvider | None:
    """The provider recorded in ``workdir/provider.json`` if it still runs, else None."""
    workdir = workdir.resolve()
    state = read_state(workdir / STATE_FILE)
    if state is None:
        return None
    try:
        pid, port = int(state["pid"]), int(state["port"])
    except (KeyError, TypeError, ValueError):
        return None
    if not _pid_is_provider(pid, workdir):
        return None
    return OidcProvider(workdir=workdir, port=port, pid=pid)


def _discovery_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200 and json.loads(response.read()).get("issuer"))
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _log_tail(workdir: Path, lines: int = 30) -> str:
    try:
        text = (workdir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return "(the provider wrote no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(the provider wrote no log)"


def start_provider(
    workdir: Path, *, cache: Path = DEFAULT_CACHE, port: int | None = None, timeout: float = 90.0
) -> OidcProvider:
    """Start the provider on 127.0.0.1 (a free port unless ``port``) and return once its
    discovery document answers. Raises RuntimeError (with the tail of its log) when it dies,
    is not ready within ``timeout`` seconds, or one from ``workdir`` already runs."""
    workdir = workdir.resolve()
    existing = running_provider(workdir)
    if existing is not None:
        raise RuntimeError(
            f"an OIDC provider from {workdir} is already running (pid {existing.pid}, "
            f"{existing.issuer}); stop it first"
        )
    java = find_java()
    libs = fetch_jars(cache)
    if port is None:
        port = _free_port()
    elif not _port_is_free(port):
        raise RuntimeError(f"port {port} on {HOST} is already in use")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SERVER_HOSTNAME": HOST,
        "SERVER_PORT": str(port),
        "JSON_CONFIG": json.dumps(CONFIG),
    }
    env.pop("JSON_CONFIG_PATH", None)
    command = [java, "-Xms32m", "-Xmx256m", _marker(workdir), "-cp", f"{libs}/*", MAIN_CLASS]
    with (workdir / LOG_FILE).open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the launcher when started detached
        )
    provider = OidcProvider(workdir=workdir, port=port, process=process)
    deadline = time.monotonic() + timeout
    while not _discovery_answers(provider.discovery):
        if process.poll() is not None or time.monotonic() > deadline:
            why = "exited" if process.poll() is not None else f"was not ready in {timeout:.0f}s"
            stop_provider(provider, timeout=5.0)
            raise RuntimeError(f"the OIDC test provider {why}:\n{_log_tail(workdir)}")
        time.sleep(0.2)
    state = {"pid": process.pid, "port": port, "issuer": provider.issuer}
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return provider


def stop_provider(provider: OidcProvider, timeout: float = 15.0) -> None:
    """SIGTERM the provider, SIGKILL it after ``timeout`` seconds."""
    process = provider.process
    if process is not None:
        if process.poll() is None:
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
    elif provider.pid is not None and _pid_is_provider(provider.pid, provider.workdir):
        signal_group(provider.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_is_provider(provider.pid, provider.workdir):
            if time.monotonic() > deadline:
                signal_group(provider.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
    state = read_state(provider.workdir / STATE_FILE)
    if state is not None and state.get("pid") == provider.pid:
        (provider.workdir / STATE_FILE).unlink(missing_ok=True)


def stop_from_workdir(workdir: Path) -> bool:
    """Stop the provider recorded in ``workdir``; False when none runs."""
    provider = running_provider(workdir)
    if provider is None:
        (workdir / STATE_FILE).unlink(missing_ok=True)
        return False
    stop_provider(provider)
    return True
