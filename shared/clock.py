"""The services' notion of now: one injectable clock, so tests move time forward instead
of sleeping and every rule that depends on the date reads the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC, shifted by an offset that tests may advance."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
