"""A server settles its heap before it serves: what exists then is out of the cyclic
collector's sight, and a full pass walks only what was made since."""

from __future__ import annotations

import gc

from shared import heap


def test_settle_freezes_what_exists_and_collects_later_cycles() -> None:
    try:
        heap.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # at least the test run's own modules
        before = len(gc.get_objects())
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # made after the freeze: still collected
        assert len(gc.get_objects()) <= before
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
