"""The start-up GC tuning both services call (``homesec_runtime.gc_tuning``): start-up objects are frozen
out of collection, gen 0 raised."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from homesec_runtime.gc_tuning import tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    tracked = len(gc.get_objects())
    tune_gc(12_345)
    assert gc.get_freeze_count() >= tracked // 2  # what start-up built is out of every collection
    assert len(gc.get_objects()) < tracked // 2
    assert gc.get_threshold()[0] == 12_345
