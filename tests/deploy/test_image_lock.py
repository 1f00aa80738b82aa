"""The services image installs exactly deploy/containers/requirements.lock: every package
pinned, and every dependency pyproject.toml names at the version it names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _lock() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in (REPO / "deploy/containers/requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert "==" in line, f"not pinned in the image's lock: {line}"
        name, version = line.split("==", 1)
        pinned[_name(name)] = version.strip()
    return pinned


def test_the_lock_pins_every_dependency_at_pyprojects_version() -> None:
    lock = _lock()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = _name(requirement), requirement.split("==", 1)[1].strip()
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_the_image_installs_the_lock_and_nothing_else() -> None:
    containerfile = (REPO / "deploy/containers/services.Containerfile").read_text()
    assert "--no-deps -r /opt/ila/requirements.lock" in containerfile
    assert "COPY pyproject.toml" not in containerfile
    # the build context lets the lock through (and nothing of the developer's tree it needs not)
    allowed = (REPO / ".containerignore").read_text().splitlines()
    assert "!deploy/containers/requirements.lock" in allowed
