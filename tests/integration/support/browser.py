"""A real browser for page tests: Debian's chromium driven by Python Playwright, and
axe-core (bundled by axe-playwright-python) run inside it.

Chromium is installed by :func:`chromium` when missing (as root only; no browser
download). With CI=true a missing browser fails the test; elsewhere it skips.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"a browser is required in CI: {reason}")
    pytest.skip(reason)


def chromium() -> Path:
    """Debian's chromium, installed if missing and possible."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
            if done.returncode != 0:
                unavailable(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing and could not be installed")
    return CHROMIUM


async def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    try:
        from axe_playwright_python.async_playwright import Axe
    except ImportError as exc:  # pragma: no cover - environment problem
        unavailable(f"axe-playwright-python is not installed: {exc}")
        raise
    results = await Axe().run(page)
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# every element a keyboard user must reach (a scrollable region in the tab order too),
# marked with its index
MARK_ACTIONS = """() => {
  const found = [...document.querySelectorAll(
    'a[href], button, select, textarea, input:not([type=hidden]), [tabindex]:not([tabindex^="-"])')]
    .filter(e => !e.disabled && e.getClientRects().length > 0);
  found.forEach((e, i) => e.setAttribute('data-action', String(i)));
  return found.length;
}"""
FOCUSED = """() => {
  const e = document.activeElement;
  return e ? [e.getAttribute('data-action'), getComputedStyle(e).outlineStyle] : [null, null];
}"""


async def tab_reaches_every_action(page: Any) -> None:
    """Tab from the top of the page: every link, button and field takes the focus, each
    with a visible outline."""
    total = await page.evaluate(MARK_ACTIONS)
    reached: set[str] = set()
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(total + 5):
        await page.keyboard.press("Tab")
        action, outline = await page.evaluate(FOCUSED)
        if action is not None:
            assert outline not in (None, "none"), f"element {action} has no visible focus"
            reached.add(action)
    missing = set(map(str, range(total))) - reached
    assert not missing, f"Tab never reaches {sorted(missing)} of {total} actions"


@contextmanager
def served_in_thread(app: Any, name: str = "app-server") -> Iterator[str]:
    """``app`` served by uvicorn on a free local port in a thread of its own (its lifespan
    runs there), for a browser in the test's loop; its base URL."""
    import uvicorn

    from tests.support import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
