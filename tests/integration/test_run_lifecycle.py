"""``ila run`` (``make run``) stops the embedded PostgreSQL it started when it is stopped,
and joins and leaves one that was already running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ila.postgres import embedded_postgres_url, embedded_running, stop_embedded

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_and_stop(data_dir: Path, how: int) -> subprocess.CompletedProcess[str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILA_")}
    env |= {"ILA_DATA_DIR": str(data_dir), "ILA_PORT": str(port), "ILA_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ila.cli", "run"],
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
