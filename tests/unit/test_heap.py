"""A server settles its heap before it serves: what exists then is out of the cyclic
collector's sight, and a full pass walks only what was made since. A bulk job's steps set
aside what they keep, and the job's end collects it all once."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared import heap


@pytest.fixture(autouse=True)
def unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_settled", False)
    monkeypatch.setattr(heap, "_set_aside", False)
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_exists_and_later_cycles_are_still_collected() -> None:
    heap.settle()
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # at least the test run's own modules
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # made after the freeze: still collected
    assert gc.get_freeze_count() == frozen


def test_settle_collects_the_young_generation_less_often() -> None:
    older = gc.get_threshold()[1:]
    heap.settle()
    assert gc.get_threshold() == (heap.YOUNG, *older)
    passes: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        kept = [[i] for i in range(heap.YOUNG // 2)]  # tracked objects, short of the threshold
        assert passes == []
        kept += [[i] for i in range(heap.YOUNG)]
        assert passes  # past it: the collector ran
    finally:
        gc.callbacks.remove(seen)


def test_a_paused_step_sets_aside_what_it_kept_and_thaw_collects_its_cycles() -> None:
    enabled = gc.isenabled()
    with heap.paused():
        assert not gc.isenabled()
        kept = [{"state": i} for i in range(1000)]
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
    assert gc.isenabled() == enabled
    assert gc.get_freeze_count() >= len(kept)
    heap.thaw()
    assert gc.get_freeze_count() == 0  # not settled: nothing frozen again
    assert kept[999] == {"state": 999}


def test_thaw_in_a_settled_process_freezes_again_after_collecting() -> None:
    heap.settle()
    with heap.paused():
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
    before = gc.get_freeze_count()
    heap.thaw()
    assert 0 < gc.get_freeze_count() < before  # the cycle is gone, the rest frozen again


def test_thaw_with_nothing_set_aside_does_not_collect() -> None:
    heap.settle()
    passes: list[object] = []

    def seen(phase: str, info: dict[str, object]) -> None:
        if phase == "start":
            passes.append(info)

    enabled = gc.isenabled()
    gc.disable()  # only the passes thaw asks for are counted
    gc.callbacks.append(seen)
    try:
        heap.thaw()  # e.g. a run that found another runner: no batch was set aside
        assert passes == []
        with heap.paused():
            pass
        heap.thaw()
        assert len(passes) == 1
    finally:
        gc.callbacks.remove(seen)
        if enabled:
            gc.enable()
