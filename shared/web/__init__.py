"""What the server-rendered pages of every component share: one stylesheet (the
registry's look), included by each component's ``base.html`` from :data:`TEMPLATES`."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
