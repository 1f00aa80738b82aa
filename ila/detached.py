"""What the development launchers share to run a JVM detached from the command that
started it (the Kafka broker, the OIDC test provider): the state file recording it, the
check that a pid is still that JVM and not a reused pid, and signals to its process group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any


def read_state(path: Path) -> dict[str, Any] | None:
    """The JSON state recorded at ``path``, or None when missing or unreadable."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def pid_runs(pid: int, *markers: bytes) -> bool:
    """``pid`` is alive and its command line holds every one of ``markers`` (a state file
    may outlive its process and the pid be reused by an unrelated one)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # PermissionError: alive but another user's, so not one this user started
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # no procfs (macOS): a live pid is the best evidence there is
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return all(marker in args for marker in markers)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal ``pid``'s process group when it leads one (start_new_session), reaching
    anything it forked; else the process alone. A process already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
                return
        except ProcessLookupError:
            return
        os.kill(pid, sig)
