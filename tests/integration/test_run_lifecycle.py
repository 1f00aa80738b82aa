"""``ila run`` (``make run``) stops the embedded PostgreSQL it started when it is stopped,
and joins and leaves one that was already running; with ``--workers`` its processes serve
the whole system together and stop with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ila.postgres import embedded_postgres_url, embedded_running, stop_embedded
from shared.settings import Settings
from tests.integration.support.accounts import account_body
from tests.support import bearer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_and_stop(
    data_dir: Path,
    how: int,
    *args: str,
    during: Callable[[str, subprocess.Popen[str]], None] = lambda base, proc: None,
) -> subprocess.CompletedProcess[str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILA_")}
    env |= {"ILA_DATA_DIR": str(data_dir), "ILA_PORT": str(port), "ILA_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ila.cli", "run", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ila run did not become ready"
            time.sleep(0.5)
        assert embedded_running(data_dir)
        during(f"http://127.0.0.1:{port}", proc)
        proc.send_signal(how)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_run_stops_the_database_it_started(tmp_path: Path, how: int) -> None:
    _run_and_stop(tmp_path, how)
    assert not embedded_running(tmp_path)
    # and a second run on the same data directory starts cleanly again
    _run_and_stop(tmp_path, signal.SIGTERM)
    assert not embedded_running(tmp_path)


def test_run_joins_and_leaves_a_database_that_was_already_running(tmp_path: Path) -> None:
    embedded_postgres_url(tmp_path, keep_running=True)
    try:
        assert embedded_running(tmp_path)
        _run_and_stop(tmp_path, signal.SIGTERM)
        assert embedded_running(tmp_path)
    finally:
        stop_embedded(tmp_path)
    assert not embedded_running(tmp_path)


def _servers(parent: int) -> list[int]:
    """The server processes under ``ila run`` (uvicorn's, spawned by multiprocessing)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_run_with_workers_serves_the_whole_system_from_each_and_stops(tmp_path: Path) -> None:
    settings = Settings()
    agency = bearer(settings, "agency", sub="desk", agency_id="pes-fr")
    servers: list[int] = []

    def during(base: str, proc: subprocess.Popen[str]) -> None:
        servers.extend(_servers(proc.pid))
        # a connection per request (no keep-alive): the kernel hands each to either process,
        # where one kept-alive connection would stay with one of them
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, timeout=10, limits=fresh) as c:
            opened = []
            for _ in range(6):
                r = c.post("/v1/accounts", headers=agency, json=account_body())
                assert r.status_code == 201, r.text
                opened.append(r.json()["account_id"])
            # each opening reaches the ledger through the relays and consumers of whichever
            # process took it, and is read through whichever process takes the read
            deadline = time.monotonic() + 60
            for account in opened:
                while True:
                    r = c.get(f"/v1/ledger/accounts/{account}/balance", headers=agency)
                    if r.status_code == 200:
                        break
                    assert time.monotonic() < deadline, r.text
                    time.sleep(0.2)

    _run_and_stop(tmp_path, signal.SIGTERM, "--workers", "2", during=during)
    assert len(servers) == 2, servers
    assert not any(Path(f"/proc/{pid}").exists() for pid in servers)
    assert not embedded_running(tmp_path)
